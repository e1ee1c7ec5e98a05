import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { PipeError } from '../../src/errors.js';
import { create, spec } from '../../src/loaders/gzip.js';
import { gunzipInMemory, IN_MEMORY_MAX_BYTES, IN_MEMORY_MAX_OUTPUT } from '../../src/loaders/gzip-decoder.js';
import { chunksOf, ctx, fixture, run, runBytes } from './helpers.js';

const loader = create({}, ctx);
const stage = () => loader.stage({ identity: 'test', uri: 'file:///test' });

describe('gzip loader', () => {
  it('declares itself as a bytes loader with no options', () => {
    expect(spec).toMatchObject({ kind: 'loader', type: 'gzip', options: {} });
    expect(loader.output).toBe('bytes');
  });

  it.each([
    ['compressed.log.gz', 'public/logstash-input-s3/compressed.log.gz', fixture('public/logstash-input-s3/uncompressed.log').toString()],
    ['multiple_compressed_streams.gz', 'public/logstash-input-s3/multiple_compressed_streams.gz', 'hello 1\nhello 2\nhello 3\nhello 4\nhello 5\nhello 6\nhello 7\nhello 8\nhello 9\nhello 10\nhello 11\nmore hello 12\nmore hello 13\nmore hello 14\nmore hello 15\nmore hello 16\n'],
  ])('decodes %s', async (_name, path, expected) => {
    const { bytes, error } = await runBytes([stage()], chunksOf(fixture(path), 7));
    expect(error).toBeUndefined();
    expect(bytes.toString()).toBe(expected);
  });

  it('fails content that is not gzip, at byte 0, instead of passing it through', async () => {
    const { items, error } = await run([stage()], [fixture('public/logstash-input-s3/uncompressed.log')]);
    expect(items).toEqual([]);
    expect(error).toBeInstanceOf(PipeError);
    expect(error).toMatchObject({ code: 'PIPE_ARTIFACT_CORRUPT', message: 'not gzip data: no gzip magic (starts with 32 30 31 30)', position: { byte: 0 } });
  });

  it('fails a truncated member with PIPE_ARTIFACT_TRUNCATED', async () => {
    const { error } = await run([stage()], [fixture('bad/truncated.log.gz')]);
    expect(error).toMatchObject({ code: 'PIPE_ARTIFACT_TRUNCATED', position: { byte: 150 } });
  });

  it('yields nothing for an empty artifact', async () => {
    const { items, error } = await run([stage()], []);
    expect(error).toBeUndefined();
    expect(items).toEqual([]);
  });

  it('gives a fresh stage per artifact', async () => {
    const a = runBytes([stage()], [gzipSync('one\n')]);
    const b = runBytes([stage()], [gzipSync('two\n')]);
    expect((await a).bytes.toString()).toBe('one\n');
    expect((await b).bytes.toString()).toBe('two\n');
  });
});

describe('gzip in memory (the fast path for small inputs)', () => {
  const good: Array<[string, Buffer]> = [
    ['single member', fixture('public/logstash-input-s3/compressed.log.gz')],
    ['multi-member fixture', fixture('public/logstash-input-s3/multiple_compressed_streams.gz')],
    ['zero padding after the last member', Buffer.concat([gzipSync('padded\n'), Buffer.alloc(512)])],
    ['an empty member between two', Buffer.concat([gzipSync('a\n'), gzipSync(''), gzipSync('b\n')])],
  ];
  it.each(good)('%s: the same bytes as the streaming decoder', async (_name, input) => {
    const members = gunzipInMemory(input);
    expect(members).toBeDefined();
    const streamed = await runBytes([stage()], chunksOf(input, 5));
    expect(streamed.error).toBeUndefined();
    expect(Buffer.concat(members!).equals(streamed.bytes)).toBe(true);
  });

  const crcFlipped = Buffer.from(gzipSync('checked\n'));
  crcFlipped[crcFlipped.length - 8]! ^= 1;
  const bad: Array<[string, Buffer]> = [
    ['truncated member', fixture('bad/truncated.log.gz')],
    ['garbage in the body', fixture('bad/garbage-body.gz')],
    ['trailing garbage', fixture('bad/trailing-garbage.log.gz')],
    ['CRC-32 mismatch', crcFlipped],
    ['garbage after zero padding', Buffer.concat([gzipSync('x\n'), Buffer.alloc(8), Buffer.from('junk')])],
    ['not gzip at all', Buffer.from('plain text\n')],
  ];
  it.each(bad)('%s: declines, and the streaming decoder reports the error', async (_name, input) => {
    expect(gunzipInMemory(input)).toBeUndefined();
    const { error } = await run([stage()], [input]);
    expect(error).toBeInstanceOf(PipeError);
  });

  it('declines output beyond its limit, which then streams', async () => {
    const big = gzipSync(Buffer.alloc(IN_MEMORY_MAX_OUTPUT + 1, 0x61));
    expect(big.length).toBeLessThan(IN_MEMORY_MAX_BYTES);
    expect(gunzipInMemory(big)).toBeUndefined();
    const { bytes, error } = await runBytes([stage()], [big]);
    expect(error).toBeUndefined();
    expect(bytes.length).toBe(IN_MEMORY_MAX_OUTPUT + 1);
  });
});
