import { RecordBatch } from '../../src/types.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { LineSplitter, type LineItem } from '../../src/loaders/line-splitter.js';
import { create, spec } from '../../src/loaders/lines.js';
import { RowError } from '../../src/types.js';
import { chunksOf, ctx, fixture, run } from './helpers.js';

// A real gc() for the memory test: measured memory is then live memory, not garbage awaiting collection.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const artifact = { identity: 'test', uri: 'file:///test' };
const stage = (options: Record<string, unknown> = {}) => create({ maxLineBytes: 1024 * 1024, encoding: 'utf8', ...options }, ctx).stage(artifact);

/** RowErrors as plain objects, so expectations read like the records. */
const plain = (items: unknown[]) => items.map((i) => (i instanceof RowError ? { code: i.code, message: i.message, raw: i.raw } : i));

describe('lines loader: format variants', () => {
  const cases: Array<[string, Buffer, unknown[]]> = [
    ['LF with a final newline', Buffer.from('a\nb\n'), ['a', 'b']],
    ['no final newline', Buffer.from('a\nb'), ['a', 'b']],
    ['CRLF', Buffer.from('a\r\nb\r\n'), ['a', 'b']],
    ['CRLF, no final newline, final CR stripped', Buffer.from('a\r\nb\r'), ['a', 'b']],
    ['empty lines are records', Buffer.from('a\n\n\r\nb\n'), ['a', '', '', 'b']],
    ['a lone newline is one empty line', Buffer.from('\n'), ['']],
    ['empty input has no lines', Buffer.alloc(0), []],
    ['a CR inside a line is kept', Buffer.from('a\rb\n'), ['a\rb']],
    ['UTF-8 byte-order mark dropped from the first line only', Buffer.from('\ufeffa\n\ufeffb\n'), ['a', '\ufeffb']],
    ['multi-byte characters split across chunks', Buffer.from('żółć 🚀\nnext\n'), ['żółć 🚀', 'next']],
    ['uncompressed.log fixture', fixture('public/logstash-input-s3/uncompressed.log'), fixture('public/logstash-input-s3/uncompressed.log').toString().split('\n').slice(0, 2)],
    [
      'multiline.log fixture (no final newline)',
      fixture('public/logstash-input-s3/multiline.log'),
      ['__SEPARATOR__', 'file:1 record:1 line:1', 'file:1 record:1 line:2', '__SEPARATOR__', 'file:1 record:2 line:1', 'file:1 record:2 line:2'],
    ],
    [
      'invalid UTF-8 (GBK bytes) becomes U+FFFD; the empty last line is kept',
      fixture('public/logstash-input-s3/invalid_utf8.gbk.log'),
      ['2015-01-01T02:52:45.866722Z no "GET http://www.logstash.com:80/utfmadness/\ufffd\ufffd4od HTTP/1.1"', ''],
    ],
    ['NUL bytes pass through', fixture('bad/nul-bytes.jsonl'), ['{"n":1}', '\0\0\0\0', '{"n":2}']],
  ];
  for (const [name, input, expected] of cases) {
    for (const size of [1, 2, 3, 7, 1 << 16]) {
      it(`${name} (chunks of ${size})`, async () => {
        const { items, error } = await run([stage()], chunksOf(input, size));
        expect(error).toBeUndefined();
        expect(items).toEqual(expected);
      });
    }
  }

  it('empty chunks change nothing', async () => {
    const { items } = await run([stage()], [Buffer.from('a'), Buffer.alloc(0), Buffer.from('b\n'), Buffer.alloc(0)]);
    expect(items).toEqual(['ab']);
  });

  it('latin1 maps every byte to one character', async () => {
    const { items } = await run([stage({ encoding: 'latin1' })], [fixture('public/logstash-input-s3/invalid_utf8.gbk.log')]);
    expect((items[0] as string).slice(-18)).toBe('utfmadness/\u00a1\u00d64od HTTP/1.1"'.slice(-18));
  });
});

describe('lines loader: over-long lines', () => {
  const tooLong = (length: number, max: number, raw: string) => ({ code: 'PIPE_LINE_TOO_LONG', message: `line of ${length} bytes is longer than maxLineBytes (${max})`, raw });
  const cases: Array<[string, string, unknown[]]> = [
    ['exactly the limit is kept', 'short\n0123456789\nafter\n', ['short', '0123456789', 'after']],
    ['the limit plus CRLF is kept', '0123456789\r\nafter\n', ['0123456789', 'after']],
    ['one byte over is a RowError in its place', 'short\n0123456789X\nafter\n', ['short', tooLong(11, 10, '0123456789X'), 'after']],
    ['a long line with CRLF counts without the CR', 'x'.repeat(25) + '\r\nafter', [tooLong(25, 10, 'x'.repeat(25)), 'after']],
    ['an over-long final line without newline', 'ok\n' + 'y'.repeat(40), ['ok', tooLong(40, 10, 'y'.repeat(40))]],
    ['raw keeps the first 200 bytes', 'z'.repeat(300) + '\nend\n', [tooLong(300, 10, 'z'.repeat(200)), 'end']],
    ['the limit counts bytes, not characters', 'ééééé\néééééé\n', ['ééééé', tooLong(12, 10, 'éééééé')]],
  ];
  for (const [name, input, expected] of cases) {
    for (const size of [1, 4, 1 << 16]) {
      it(`${name} (chunks of ${size})`, async () => {
        const { items, error } = await run([stage({ maxLineBytes: 10 })], chunksOf(Buffer.from(input), size));
        expect(error).toBeUndefined();
        expect(plain(items)).toEqual(expected);
      });
    }
  }

  it('a 64 MB line is reported without being held in memory, and reading goes on', async () => {
    const chunk = 64 * 1024;
    const chunks = 1024; // 64 MiB of 'x'
    const used = () => {
      gc();
      const m = process.memoryUsage();
      return m.arrayBuffers + m.heapUsed;
    };
    const base = used();
    let peak = 0;
    let measured = 0;
    async function* source(): AsyncGenerator<Buffer> {
      yield Buffer.from('first\n');
      for (let i = 0; i < chunks; i++) {
        if (i % 64 === 63) {
          peak = Math.max(peak, used() - base);
          measured++;
        }
        yield Buffer.alloc(chunk, 0x78);
      }
      yield Buffer.from('\nlast\n');
    }
    const { items, error } = await run([stage()], source());
    expect(error).toBeUndefined();
    // Holding the line would take 64 MiB; the splitter keeps at most maxLineBytes + 1.
    expect(measured).toBe(16);
    expect(peak).toBeLessThan(8 * 1024 * 1024);
    expect(plain(items)).toEqual(['first', tooLong(chunk * chunks, 1024 * 1024, 'x'.repeat(200)), 'last']);
  });
});

describe('LineSplitter (pure)', () => {
  it('returns every line a chunk completes, in one array', () => {
    const s = new LineSplitter({ maxLineBytes: 100 });
    const out: LineItem[] = [];
    s.push(Buffer.from('a\nb\nc'), out);
    expect(out).toEqual(['a', 'b']);
    s.push(Buffer.from('d\n'), out);
    s.end(out);
    expect(out).toEqual(['a', 'b', 'cd']);
  });

  it('a chunk longer than the limit is checked line by line', () => {
    const s = new LineSplitter({ maxLineBytes: 4 });
    const out: LineItem[] = [];
    s.push(Buffer.from('abcd\nabcdef\nab\n'), out);
    expect(plain(out)).toEqual(['abcd', { code: 'PIPE_LINE_TOO_LONG', message: 'line of 6 bytes is longer than maxLineBytes (4)', raw: 'abcdef' }, 'ab']);
  });

  // A whole inflated artifact arrives as one chunk: it is split in spans of about 1 MiB, each ending
  // on a newline. Lines across span ends, over-long lines inside a span, CRLF and multi-byte
  // characters must come out as they would one line at a time.
  it.each([
    ['default limit', 1024 * 1024],
    ['a limit smaller than a span', 5000],
  ])('a 5 MB chunk is the same lines as the text split whole (%s)', (_name, maxLineBytes) => {
    const lines: string[] = [];
    for (let i = 0, length = 0; length < 5 * 1024 * 1024; i++) {
      if (i % 977 === 0) lines.push('é'.repeat(3000 + (i % 5000)));
      else if (i % 4001 === 0) lines.push('');
      else lines.push(`line ${i} ${'x'.repeat(i % 300)}${i % 3 === 0 ? '\r' : ''}`);
      length += lines.at(-1)!.length + 1;
    }
    const text = lines.join('\n') + '\n';
    const s = new LineSplitter({ maxLineBytes });
    const out: LineItem[] = [];
    s.push(Buffer.from(text), out);
    s.end(out);
    const expected = lines.map((l) => {
      const line = l.endsWith('\r') ? l.slice(0, -1) : l;
      const bytes = Buffer.byteLength(line);
      return bytes > maxLineBytes ? { code: 'PIPE_LINE_TOO_LONG', message: `line of ${bytes} bytes is longer than maxLineBytes (${maxLineBytes})` } : line;
    });
    expect(out).toHaveLength(expected.length);
    expect(plain(out).map((o) => (typeof o === 'string' ? o : { code: (o as RowError).code, message: (o as RowError).message }))).toEqual(expected);
    expect(s.boundary).toBe(Buffer.byteLength(text));
  });
});

describe('lines loader: spec and abort', () => {
  it('documents every option with type, default, example and description', () => {
    expect(spec.kind).toBe('loader');
    for (const [name, o] of Object.entries(spec.options)) {
      expect({ name, ...o }).toMatchObject({ name, type: expect.any(String), description: expect.any(String) });
      expect(o.default, name).toBeDefined();
      expect(o.example, name).toBeDefined();
    }
    expect(create({}, ctx).output).toBe('records');
  });

  it('stops reading when aborted', async () => {
    const controller = new AbortController();
    let pulled = 0;
    async function* endless(): AsyncGenerator<Buffer> {
      for (;;) {
        pulled++;
        yield Buffer.from('line\n'.repeat(100));
      }
    }
    let seen = 0;
    const { error } = await run(
      [
        stage(),
        async function* (src: AsyncIterable<unknown>) {
          for await (const item of src) {
            seen += item instanceof RecordBatch ? item.records.length : 1;
            if (seen >= 250 && !controller.signal.aborted) controller.abort();
          }
        },
      ],
      endless(),
      controller.signal,
    );
    expect(error).toMatchObject({ name: 'AbortError' });
    // The lines of one chunk come together: 3 chunks of 100 lines reach 250.
    expect(seen).toBe(300);
    expect(pulled).toBeLessThan(50);
  });
});
