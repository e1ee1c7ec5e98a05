import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { RecordBatch } from '../../src/types.js';
import { gzipSync } from 'node:zlib';
import { PipeError } from '../../src/errors.js';
import { autoDecompress } from '../../src/loaders/decompress.js';
import { create, jsonOptions, jsonStage, parseJsonDocument, spec } from '../../src/loaders/json.js';
import { chunksOf, ctx, fixture, run } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

type Mode = 'fast' | 'stream';
/** `stream` forces the streaming decoder: the document outgrows a 16-byte in-memory limit at once. */
const stage = (mode: Mode, options: Record<string, unknown> = {}) =>
  jsonStage({ ...jsonOptions(options), ...(mode === 'stream' ? { maxInMemoryBytes: 16 } : {}) });
const modes: Mode[] = ['fast', 'stream'];
const sizes = [1, 7, 4096, 1 << 20];
const ct = (name: string) => fixture(`public/opentelemetry-collector-contrib/${name}`);

/** Varied records: escapes, surrogate pairs, long strings (the tokenizer's slow path), odd numbers and keys. */
function variedDocument(n: number): Buffer {
  const records = Array.from({ length: n }, (_, i) => ({
    i,
    s: `line ${i}\n\t"quoted" \\ back é ß 🚀 ${'long '.repeat(i % 90)}`,
    nums: [0, -0.5, 1e3, 1.5e-7, 12345678901234567890, -i],
    flags: [true, false, null],
    nested: { a: { b: { c: [i, { d: [] }, {}] } }, 'dotted.key': i },
    ['__proto__']: { polluted: i },
  }));
  return Buffer.from(JSON.stringify({ meta: { count: n }, Records: records, trailer: [1, 2, 3] }, null, i2(n)));
}
const i2 = (n: number) => (n % 2 ? 2 : undefined);

describe('json loader: records', () => {
  const cases: Array<{ name: string; input: Buffer; path?: string; expected: unknown[] }> = [
    { name: 'CloudTrail log file: the Records', input: ct('cloudtrail_log.json'), path: 'Records', expected: JSON.parse(ct('cloudtrail_log.json').toString()).Records },
    { name: 'indented CloudTrail file', input: ct('cloudtrail_log_stream.json'), path: 'Records', expected: JSON.parse(ct('cloudtrail_log_stream.json').toString()).Records },
    { name: 'empty Records: no records, no error', input: ct('cloudtrail_log_empty.json'), path: 'Records', expected: [] },
    { name: 'digest file (no Records): the whole document', input: ct('cloudtrail_digest.json'), path: 'Records', expected: [JSON.parse(ct('cloudtrail_digest.json').toString())] },
    { name: 'no path: the whole document', input: ct('cloudtrail_log_stream.json'), expected: [JSON.parse(ct('cloudtrail_log_stream.json').toString())] },
    { name: 'two documents, no path (json.log)', input: fixture('public/logstash-input-s3/json.log'), expected: [{ hello: 'world' }, { hello: 'awesome world' }] },
    { name: 'concatenated documents, each with Records', input: fixture('bad/concatenated.json'), path: 'Records', expected: [{ eventID: 'a1' }, { eventID: 'b1' }, { eventID: 'b2' }] },
    { name: 'a record that is a string is still a record', input: fixture('bad/record-string.json'), path: 'Records', expected: [{ eventID: 'a1' }, 'just a string', { eventID: 'a3' }] },
    { name: 'invalid UTF-8 becomes U+FFFD', input: fixture('bad/invalid-utf8.json'), path: 'Records', expected: [{ eventID: 'a1', userAgent: 'caf\ufffd \ufffd\ufffd' }] },
    { name: 'a nested path', input: Buffer.from('{"a":{"x":[9],"b":[1,{"c":2}]},"b":[3]}'), path: 'a.b', expected: [1, { c: 2 }] },
    { name: 'a path through an array is not followed', input: Buffer.from('{"a":[{"b":[1]}]}'), path: 'a.b', expected: [{ a: [{ b: [1] }] }] },
    { name: 'a top-level array with a path is one record', input: Buffer.from('[{"Records":[1]}]'), path: 'Records', expected: [[{ Records: [1] }]] },
    { name: 'a top-level scalar', input: Buffer.from(' 42 '), path: 'Records', expected: [42] },
    { name: 'a byte-order mark is dropped', input: Buffer.from('\ufeff{"Records":[1,2]}'), path: 'Records', expected: [1, 2] },
    { name: 'varied values survive both paths', input: variedDocument(300), path: 'Records', expected: JSON.parse(variedDocument(300).toString()).Records },
  ];
  for (const c of cases) {
    for (const mode of modes) {
      for (const size of sizes) {
        it(`${c.name} (${mode}, chunks of ${size})`, async () => {
          const { items, error } = await run([stage(mode, { path: c.path })], chunksOf(c.input, size));
          expect(error).toBeUndefined();
          expect(items).toEqual(c.expected);
        });
      }
    }
  }

  it('fast and streaming paths give identical records, down to key order and own __proto__', async () => {
    const input = variedDocument(1000);
    const fast = await run([stage('fast', { path: 'Records' })], chunksOf(input, 65_536));
    const streamed = await run([stage('stream', { path: 'Records' })], chunksOf(input, 65_536));
    expect(fast.items).toHaveLength(1000);
    expect(JSON.stringify(streamed.items)).toBe(JSON.stringify(fast.items));
    const first = streamed.items[0] as Record<string, unknown>;
    expect(Object.getPrototypeOf(first)).toBe(Object.prototype);
    expect(Object.hasOwn(first, '__proto__')).toBe(true);
  });
});

describe('json loader: errors', () => {
  const trailingComma = fixture('bad/trailing-comma.json');
  const deep = Buffer.from('['.repeat(100_000) + ']'.repeat(100_000));
  const record = (n: number) => ({ eventID: `e${n}`, pad: 'x'.repeat(100) });
  const hugeRecord = Buffer.from(JSON.stringify({ Records: [record(0), { big: 'y'.repeat(5000) }, record(2)] }));
  const cases: Array<{ name: string; input: Buffer; path?: string; limit?: number; code: string; message: string | RegExp; byte: number; items: unknown[] }> = [
    { name: 'trailing comma', input: trailingComma, path: 'Records', code: 'PIPE_ARTIFACT_CORRUPT', message: /^invalid JSON: Parser cannot parse input/, byte: trailingComma.indexOf(',]') + 1, items: [{ eventID: 'a1' }, { eventID: 'a2' }] },
    { name: 'Records is an object', input: fixture('bad/records-object.json'), path: 'Records', code: 'PIPE_ARTIFACT_CORRUPT', message: "path 'Records' holds an object, not an array", byte: 11, items: [] },
    { name: 'Records is null', input: Buffer.from('{"Records":null}'), path: 'Records', code: 'PIPE_ARTIFACT_CORRUPT', message: "path 'Records' holds null, not an array", byte: 15, items: [] },
    { name: 'a nested path holds a string', input: Buffer.from('{"a":{"b":"x"}}'), path: 'a.b', code: 'PIPE_ARTIFACT_CORRUPT', message: "path 'a.b' holds a string, not an array", byte: 12, items: [] },
    { name: 'truncated document', input: fixture('bad/truncated.json'), path: 'Records', code: 'PIPE_ARTIFACT_CORRUPT', message: 'JSON ends inside a value (truncated): Parser has expected a string value', byte: 54, items: [{ eventID: 'a1' }, { eventID: 'a2' }] },
    { name: 'unclosed containers', input: Buffer.from('{"Records":[1,2'), path: 'Records', code: 'PIPE_ARTIFACT_CORRUPT', message: /^JSON ends inside a value \(truncated\)/, byte: 15, items: [1] }, // '2' may be the start of '25'
    { name: 'ends after a complete element', input: Buffer.from('{"Records":[{"a":1} '), path: 'Records', code: 'PIPE_ARTIFACT_CORRUPT', message: /^JSON ends inside a value \(truncated\)/, byte: 20, items: [{ a: 1 }] },
    { name: 'ends after a key', input: Buffer.from('{"Records"'), path: 'Records', code: 'PIPE_ARTIFACT_CORRUPT', message: /^JSON ends inside a value \(truncated\)/, byte: 10, items: [] },
    { name: 'NUL bytes after a document', input: fixture('bad/nul-bytes.jsonl'), code: 'PIPE_ARTIFACT_CORRUPT', message: /^invalid JSON: /, byte: 8, items: [{ n: 1 }] },
    { name: 'not JSON at all', input: Buffer.from('hello world'), code: 'PIPE_ARTIFACT_CORRUPT', message: /^invalid JSON: /, byte: 0, items: [] },
    { name: 'empty content', input: Buffer.alloc(0), code: 'PIPE_ARTIFACT_EMPTY', message: 'no JSON value in the content', byte: 0, items: [] },
    { name: 'whitespace only', input: Buffer.from(' \r\n\t'), code: 'PIPE_ARTIFACT_EMPTY', message: 'no JSON value in the content', byte: 4, items: [] },
    { name: '100,000 levels of nesting', input: deep, code: 'PIPE_ARTIFACT_CORRUPT', message: 'JSON nested deeper than maxDepth (1000)', byte: 1000, items: [] },
    {
      name: 'deep nesting inside Records after a good record',
      input: Buffer.from(`{"Records":[{"a":1},${'['.repeat(1200)}${']'.repeat(1200)}]}`),
      path: 'Records', code: 'PIPE_ARTIFACT_CORRUPT', message: 'JSON nested deeper than maxDepth (1000)', byte: 20 + 998, items: [{ a: 1 }],
    },
  ];
  for (const c of cases) {
    for (const size of [1, 7, 1 << 20]) {
      it(`${c.name} (fast path, chunks of ${size}): exact position, records before it delivered`, async () => {
        const { items, error } = await run([stage('fast', { path: c.path })], chunksOf(c.input, size));
        expect(error).toBeInstanceOf(PipeError);
        const e = error as PipeError;
        expect(e.code).toBe(c.code);
        expect(e.message).toMatch(c.message);
        expect(e.position).toEqual({ byte: c.byte, row: c.items.length });
        expect(items).toEqual(c.items);
      });
      it(`${c.name} (streaming path, chunks of ${size}): same error, position within one slice`, async () => {
        const { items, error } = await run([stage('stream', { path: c.path })], chunksOf(c.input, size));
        const e = error as PipeError;
        expect(e.code).toBe(c.code);
        expect(e.message).toMatch(c.message);
        expect(items).toEqual(c.items.slice(0, items.length));
        expect(e.position?.row).toBe(items.length);
        expect(e.position?.byte).toBeLessThanOrEqual(c.byte);
        expect(e.position?.byte).toBeGreaterThan(c.byte - 4096);
      });
    }
  }

  it('an error 40 KB into an in-memory document: every record before it, and its exact byte', async () => {
    const good = JSON.stringify({ Records: Array.from({ length: 300 }, (_, n) => record(n)) });
    const input = Buffer.from(good.slice(0, -2) + ',]}');
    const { items, error } = await run([stage('fast', { path: 'Records' })], chunksOf(input, 65_536));
    expect(items).toEqual(Array.from({ length: 300 }, (_, n) => record(n)));
    expect(error).toMatchObject({ code: 'PIPE_ARTIFACT_CORRUPT', position: { byte: input.length - 2, row: 300 } });
  });

  it('a record larger than maxInMemoryBytes fails after the records before it', async () => {
    const { items, error } = await run([jsonStage(jsonOptions({ path: 'Records', maxInMemoryBytes: 1024 }))], chunksOf(hugeRecord, 256));
    expect(items).toEqual([record(0)]);
    expect(error).toMatchObject({ code: 'PIPE_ARTIFACT_CORRUPT', message: 'record 1 is larger than maxInMemoryBytes (1024)', position: { row: 1 } });
  });

  it('a document larger than maxInMemoryBytes without a path fails instead of filling memory', async () => {
    const { items, error } = await run([jsonStage(jsonOptions({ maxInMemoryBytes: 1024 }))], chunksOf(hugeRecord, 256));
    expect(items).toEqual([]);
    expect(error).toMatchObject({ code: 'PIPE_ARTIFACT_CORRUPT', message: 'JSON document is larger than maxInMemoryBytes (1024); set `path` to stream the array it holds' });
  });

  it('the same document under the limit is one record', async () => {
    const { items, error } = await run([jsonStage(jsonOptions({ maxInMemoryBytes: 1 << 20 }))], chunksOf(hugeRecord, 256));
    expect(error).toBeUndefined();
    expect(items).toEqual([JSON.parse(hugeRecord.toString())]);
  });
});

describe('json loader: upstream failures', () => {
  const records = Array.from({ length: 300 }, (_, i) => ({ eventID: `e${i}`, n: i * 7919 }));
  const gz = gzipSync(JSON.stringify({ Records: records }));

  for (const mode of modes) {
    it(`a truncated gzip delivers the records its intact bytes hold, then its own error (${mode})`, async () => {
      const { items, error } = await run([autoDecompress(), stage(mode, { path: 'Records' })], chunksOf(gz.subarray(0, Math.floor(gz.length * 0.6)), 1024));
      expect(error).toMatchObject({ code: 'PIPE_ARTIFACT_TRUNCATED' });
      expect(items.length).toBeGreaterThan(50);
      expect(items.length).toBeLessThan(300);
      expect(items).toEqual(records.slice(0, items.length));
    });
  }

  it('an upstream stage error after bad JSON still reports the upstream error', async () => {
    async function* failing(source: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
      for await (const _ of source);
      yield Buffer.from('{"Records":[1,2,]');
      throw new PipeError('PIPE_ARTIFACT_CORRUPT', 'gzip member 1: invalid block type');
    }
    const { items, error } = await run([failing, stage('fast', { path: 'Records' })], [Buffer.from('x')]);
    expect(items).toEqual([1, 2]);
    expect(error).toMatchObject({ code: 'PIPE_ARTIFACT_CORRUPT', message: 'gzip member 1: invalid block type' });
  });
});

describe('json loader: documents larger than memory', () => {
  /** A CloudTrail-shaped document of `n` records, produced lazily so the test never holds it. */
  async function* bigDocument(n: number, counters: { closed: boolean }): AsyncGenerator<Buffer> {
    try {
      yield Buffer.from('{"Records":[');
      let batch: string[] = [];
      for (let i = 0; i < n; i++) {
        batch.push(JSON.stringify({ eventID: `evt-${i}`, eventName: 'GetObject', requestParameters: { bucketName: 'b', key: `k/${i}`.padEnd(200, '.') } }));
        if (batch.length === 500 || i === n - 1) {
          yield Buffer.from((i >= 500 ? ',' : '') + batch.join(','));
          batch = [];
        }
      }
      yield Buffer.from('],"trailer":{"x":1}}');
    } finally {
      counters.closed = true;
    }
  }

  it('streams a 60 MB document with bounded memory', async () => {
    const n = 200_000; // ~60 MB
    const used = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const base = used();
    let peak = 0;
    let count = 0;
    let last: unknown;
    const { error } = await run(
      [
        jsonStage(jsonOptions({ path: 'Records', maxInMemoryBytes: 1 << 20 })),
        async function* (records: AsyncIterable<unknown>) {
          for await (const r of records) {
            if (++count % 20_000 === 0) peak = Math.max(peak, used() - base);
            last = r;
          }
        },
      ],
      bigDocument(n, { closed: false }),
    );
    expect(error).toBeUndefined();
    expect(count).toBe(n);
    expect(last).toMatchObject({ eventID: `evt-${n - 1}` });
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(24 * 1024 * 1024);
  }, 120_000);

  it('abort mid-stream stops reading and closes the source', async () => {
    const controller = new AbortController();
    const counters = { closed: false };
    let seen = 0;
    const { error } = await run(
      [
        jsonStage(jsonOptions({ path: 'Records', maxInMemoryBytes: 1 << 20 })),
        async function* (records: AsyncIterable<unknown>) {
          for await (const _ of records) if (++seen === 5000) controller.abort();
        },
      ],
      bigDocument(200_000, counters),
      controller.signal,
    );
    expect(error).toMatchObject({ name: 'AbortError' });
    expect(seen).toBe(5000);
    expect(counters.closed).toBe(true);
  });
});

describe('json loader: abort in memory', () => {
  it('stops between the steps (groups of records) of an in-memory document', async () => {
    const controller = new AbortController();
    const input = Buffer.from(JSON.stringify({ Records: Array.from({ length: 5000 }, (_, i) => ({ i })) }));
    let steps = 0;
    const seen: unknown[] = [];
    const { error } = await run(
      [
        stage('fast', { path: 'Records' }),
        async function* (records: AsyncIterable<unknown>) {
          for await (const item of records) {
            seen.push(...(item instanceof RecordBatch ? item.records : [item]));
            if (++steps === 6) controller.abort();
          }
        },
      ],
      [input],
      controller.signal,
    );
    expect(error).toMatchObject({ name: 'AbortError' });
    expect(steps).toBe(6);
    // Records in order, none skipped, and far from all 5,000.
    expect(seen.length).toBeLessThan(2000);
    expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => ({ i })));
  });
});

describe('json loader: spec and pure fast path', () => {
  it('options default as the spec says', () => {
    expect(jsonOptions({})).toEqual({ path: [], maxInMemoryBytes: 32 * 1024 * 1024, maxValueBytes: 32 * 1024 * 1024, maxDepth: 1000 });
    expect(jsonOptions({ path: 'a.b', maxInMemoryBytes: 2048, maxDepth: 5 })).toEqual({ path: ['a', 'b'], maxInMemoryBytes: 2048, maxValueBytes: 2048, maxDepth: 5 });
  });

  it('documents every option', () => {
    expect(spec).toMatchObject({ kind: 'loader', type: 'json' });
    expect(spec.options['maxInMemoryBytes']).toMatchObject({ type: 'size', default: 32 * 1024 * 1024 });
    for (const o of Object.values(spec.options)) {
      expect(o.example).toBeDefined();
      expect(o.description.length).toBeGreaterThan(20);
    }
    expect(create({ path: 'Records' }, ctx).output).toBe('records');
  });

  it('parseJsonDocument defers to the streaming decoder when it cannot decide', () => {
    const opts = { path: ['Records'], maxDepth: 10, maxValueBytes: 1 << 20 };
    expect(parseJsonDocument(Buffer.from('{"Records":[1]}'), opts)).toEqual([1]);
    expect(parseJsonDocument(Buffer.from('{"Other":[1]}'), opts)).toEqual([{ Other: [1] }]);
    expect(parseJsonDocument(Buffer.from('{"Records":{}}'), opts)).toBeUndefined();
    expect(parseJsonDocument(Buffer.from('{"Records":[1]}{}'), opts)).toBeUndefined();
    expect(parseJsonDocument(Buffer.from('{"Records":[[[[[[[[[[[1]]]]]]]]]]]}'), opts)).toBeUndefined();
  });
});
