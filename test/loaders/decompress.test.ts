import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { PipeError } from '../../src/errors.js';
import { autoDecompress, detectCompression } from '../../src/loaders/decompress.js';
import { IN_MEMORY_MAX_BYTES } from '../../src/loaders/gzip-decoder.js';
import { chunksOf, fixture, run, runBytes } from './helpers.js';

const plain = fixture('public/logstash-input-s3/uncompressed.log');
const multiLines = [
  ...Array.from({ length: 11 }, (_, i) => `hello ${i + 1}`),
  ...Array.from({ length: 5 }, (_, i) => `more hello ${i + 12}`),
];

/** A gzip member built by hand, so every header field (FEXTRA, FNAME, FCOMMENT, FHCRC) is exercised. */
function memberWithAllHeaderFields(content: Buffer): Buffer {
  const head = Buffer.from([0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 0, 0, 0, 0, 0, 3]);
  const extra = Buffer.from([4, 0, 0x41, 0x42, 2, 0]);
  const name = Buffer.from('name.log\0');
  const comment = Buffer.from('a comment\0');
  const hcrc = Buffer.from([0x12, 0x34]);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(content), 0);
  trailer.writeUInt32LE(content.length, 4);
  return Buffer.concat([head, extra, name, comment, hcrc, deflateRawSync(content), trailer]);
}

describe('autoDecompress: good input', () => {
  const cases: Array<[string, Buffer, Buffer]> = [
    ['single-member gzip fixture', fixture('public/logstash-input-s3/compressed.log.gz'), plain],
    ['gzip named .zip is detected by magic bytes', fixture('public/logstash-input-s3/compressed.log.gee.zip'), plain],
    ['multi-member gzip fixture (11 + 5 lines)', fixture('public/logstash-input-s3/multiple_compressed_streams.gz'), Buffer.from(multiLines.join('\n') + '\n')],
    ['plain text passes through untouched', plain, plain],
    ['a single byte passes through', Buffer.from('x'), Buffer.from('x')],
    ['text that starts like bzip2 but is not', Buffer.from('BZh9 is a line of text\n'), Buffer.from('BZh9 is a line of text\n')],
    ['gzip followed by zero padding', Buffer.concat([gzipSync('padded\n'), Buffer.alloc(512)]), Buffer.from('padded\n')],
    ['every optional header field', memberWithAllHeaderFields(Buffer.from('héllo\n')), Buffer.from('héllo\n')],
    [
      '100 members of different sizes',
      Buffer.concat(Array.from({ length: 100 }, (_, i) => gzipSync(`member ${i} `.repeat(i * 7)))),
      Buffer.from(Array.from({ length: 100 }, (_, i) => `member ${i} `.repeat(i * 7)).join('')),
    ],
  ];
  for (const [name, input, expected] of cases) {
    for (const size of [1, 3, 11, 64 * 1024]) {
      it(`${name} (chunks of ${size})`, async () => {
        const { bytes, error } = await runBytes([autoDecompress()], chunksOf(input, size));
        expect(error).toBeUndefined();
        expect(bytes.equals(expected)).toBe(true);
      });
    }
  }

  it('empty input yields nothing', async () => {
    const { items, error } = await run([autoDecompress()], []);
    expect(error).toBeUndefined();
    expect(items).toEqual([]);
  });

  it('a large multi-member file decodes byte for byte', async () => {
    const parts = Array.from({ length: 4 }, (_, m) => Buffer.from(Array.from({ length: 50_000 }, (_, i) => `m${m} line ${i * 7919 % 100_003}\n`).join('')));
    const input = Buffer.concat(parts.map((p) => gzipSync(p)));
    const { bytes, error } = await runBytes([autoDecompress()], chunksOf(input, 65_536));
    expect(error).toBeUndefined();
    expect(bytes.equals(Buffer.concat(parts))).toBe(true);
  });
});

describe('detectCompression', () => {
  it.each([
    ['gzip', [0x1f, 0x8b, 8, 0]],
    ['zstd', [0x28, 0xb5, 0x2f, 0xfd, 0]],
    ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
    ['bzip2', [0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59]],
    [null, [0x42, 0x5a, 0x68, 0x39, 0x20, 0x41]],
    [null, [0x7b, 0x22]],
  ])('%s', (format, bytes) => {
    expect(detectCompression(Buffer.from(bytes))).toBe(format);
  });
});

describe('autoDecompress: bad input', () => {
  const member = gzipSync('line 1\nline 2\n');
  const badCrc = Buffer.from(member);
  badCrc[badCrc.length - 8]! ^= 0xff;
  const badLength = Buffer.from(member);
  badLength[badLength.length - 1]! ^= 0x01;
  // `byte` is exact, or [min, max) where zlib only reports the data error for the chunk it fails in.
  const cases: Array<{ name: string; input: Buffer; code: string; message: RegExp; byte: number | [number, number]; delivered?: string }> = [
    { name: 'truncated gzip fixture', input: fixture('bad/truncated.log.gz'), code: 'PIPE_ARTIFACT_TRUNCATED', message: /member 1: data ends inside the compressed body/, byte: 150 },
    { name: 'gzip header then garbage', input: fixture('bad/garbage-body.gz'), code: 'PIPE_ARTIFACT_CORRUPT', message: /^gzip member 1: invalid/, byte: [10, 18] },
    {
      name: 'trailing garbage after a member',
      input: fixture('bad/trailing-garbage.log.gz'),
      code: 'PIPE_ARTIFACT_CORRUPT',
      message: /trailing garbage after gzip member 1: no gzip magic \(starts with 47/,
      byte: 31,
      delivered: 'line 1\nline 2\n',
    },
    { name: 'CRC mismatch', input: badCrc, code: 'PIPE_ARTIFACT_CORRUPT', message: /member 1: CRC-32 mismatch/, byte: member.length - 8, delivered: 'line 1\nline 2\n' },
    { name: 'length mismatch', input: badLength, code: 'PIPE_ARTIFACT_CORRUPT', message: /member 1: length mismatch/, byte: member.length - 4, delivered: 'line 1\nline 2\n' },
    { name: 'trailer cut short', input: member.subarray(0, member.length - 3), code: 'PIPE_ARTIFACT_TRUNCATED', message: /member 1: trailer is truncated/, byte: member.length - 3 },
    { name: 'trailer missing (body ends at the end of input)', input: member.subarray(0, member.length - 8), code: 'PIPE_ARTIFACT_TRUNCATED', message: /member 1: trailer is truncated/, byte: member.length - 8, delivered: 'line 1\nline 2\n' },
    { name: 'header cut short', input: member.subarray(0, 6), code: 'PIPE_ARTIFACT_TRUNCATED', message: /member 1: header is truncated/, byte: 6 },
    {
      name: 'second member with an unknown method',
      input: Buffer.concat([member, Buffer.from([0x1f, 0x8b, 7, 0, 0, 0, 0, 0, 0, 3, 1, 2])]),
      code: 'PIPE_ARTIFACT_CORRUPT',
      message: /trailing garbage after gzip member 1: unknown compression method 7/,
      byte: member.length,
      delivered: 'line 1\nline 2\n',
    },
    {
      name: 'garbage after zero padding',
      input: Buffer.concat([member, Buffer.alloc(5), Buffer.from('x')]),
      code: 'PIPE_ARTIFACT_CORRUPT',
      message: /trailing garbage after the zero padding/,
      byte: member.length + 5,
      delivered: 'line 1\nline 2\n',
    },
    { name: 'zstd is recognised, not decoded', input: Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]), code: 'PIPE_ARTIFACT_UNREADABLE', message: /zstd-compressed content is not supported/, byte: 0 },
  ];
  for (const c of cases) {
    for (const size of [1, 5, 65_536]) {
      it(`${c.name} (chunks of ${size})`, async () => {
        const { bytes, error } = await runBytes([autoDecompress()], chunksOf(c.input, size));
        expect(error).toBeInstanceOf(PipeError);
        const e = error as PipeError;
        expect(e.code).toBe(c.code);
        expect(e.message).toMatch(c.message);
        const at = c.byte;
        if (typeof at === 'number') expect(e.position).toEqual({ byte: at });
        else expect(e.position?.byte).toSatisfy((b: number) => b >= at[0] && b < at[1]);
        if (c.delivered !== undefined) expect(bytes.toString()).toBe(c.delivered);
      });
    }
  }

  it('a truncated file delivers the bytes it holds, as a prefix of the original', async () => {
    const { bytes, error } = await runBytes([autoDecompress()], [fixture('bad/truncated.log.gz')]);
    expect((error as PipeError).code).toBe('PIPE_ARTIFACT_TRUNCATED');
    expect(bytes.length).toBeGreaterThan(0);
    expect(plain.subarray(0, bytes.length).equals(bytes)).toBe(true);
  });
});

describe('autoDecompress: streaming behaviour', () => {
  // ~10 MB of hex digests (poorly compressible): the compressed input (~5 MB) is larger than the
  // in-memory window, so it streams, in many chunks.
  const noise = Buffer.from(Array.from({ length: 160_000 }, (_, i) => createHash('sha256').update(String(i)).digest('hex')).join('\n'));
  const compressed = chunksOf(gzipSync(noise, { level: 1 }), 16 * 1024);
  const window = Math.ceil(IN_MEMORY_MAX_BYTES / (16 * 1024)) + 1;

  it('pulls input only as fast as output is consumed (backpressure)', async () => {
    let pulled = 0;
    async function* source(): AsyncGenerator<Buffer> {
      for (const c of compressed) {
        pulled++;
        yield c;
      }
    }
    const stage = autoDecompress() as (s: AsyncIterable<unknown>, o: { signal: AbortSignal }) => AsyncIterable<unknown>;
    const it = stage(source(), { signal: new AbortController().signal })[Symbol.asyncIterator]();
    await it.next();
    await new Promise((r) => setTimeout(r, 50));
    // The in-memory window is read ahead (one chunk past it tells the input is larger); nothing more.
    expect(compressed.length).toBeGreaterThan(window + 50);
    expect(pulled).toBeLessThanOrEqual(window + 2);
    await it.return?.(undefined);
  });

  it('abort mid-stream rejects with the abort reason and removes its listeners', async () => {
    const controller = new AbortController();
    let outputs = 0;
    let sourceClosed = false;
    async function* source(): AsyncGenerator<Buffer> {
      try {
        for (const c of compressed) yield c;
      } finally {
        sourceClosed = true;
      }
    }
    const { error } = await run(
      [
        autoDecompress(),
        async function* (s: AsyncIterable<unknown>) {
          for await (const _ of s) if (++outputs === 3) controller.abort();
        },
      ],
      source(),
      controller.signal,
    );
    expect(error).toMatchObject({ name: 'AbortError' });
    expect(outputs).toBe(3);
    expect(sourceClosed).toBe(true);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('leaves no abort listener behind after a full run', async () => {
    const controller = new AbortController();
    const { bytes, error } = await (async () => {
      const r = await run([autoDecompress()], compressed, controller.signal);
      return { bytes: Buffer.concat(r.items as Buffer[]), error: r.error };
    })();
    expect(error).toBeUndefined();
    expect(bytes.equals(noise)).toBe(true);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
