/**
 * The byte boundaries the `lines` and `jsonl` loaders report with each RecordBatch (`end`): however
 * the input is chunked, reading again from a reported boundary yields exactly the records not yet
 * yielded before it. This is what a run resuming mid-artifact by byte relies on.
 */
import { describe, expect, it } from 'vitest';
import { LineSplitter, type LineItem } from '../../src/loaders/line-splitter.js';
import { create as createJsonl } from '../../src/loaders/jsonl.js';
import { create as createLines } from '../../src/loaders/lines.js';
import { RecordBatch, RowError, type StreamStage } from '../../src/types.js';
import { chunksOf, ctx } from './helpers.js';

const artifact = { identity: 'test', uri: 'file:///test' };
const normal = (items: unknown[]): unknown[] => items.map((i) => (i instanceof RowError ? `${i.code}:${i.raw}` : i));

/** Every RecordBatch of `stage` over `input` in chunks of `size`: its records and reported end. */
async function batches(stage: () => StreamStage, input: Buffer, size: number): Promise<Array<{ records: unknown[]; end: number | undefined }>> {
  const out: Array<{ records: unknown[]; end: number | undefined }> = [];
  const source = (async function* () {
    yield* chunksOf(input, size);
  })();
  for await (const item of (stage() as (s: AsyncIterable<unknown>, o: { signal: AbortSignal }) => AsyncIterable<unknown>)(source, { signal: new AbortController().signal })) {
    expect(item).toBeInstanceOf(RecordBatch);
    const b = item as RecordBatch;
    out.push({ records: normal(b.records), end: b.end });
  }
  return out;
}

const lines = () => createLines({ maxLineBytes: 8, encoding: 'utf8' }, ctx).stage(artifact);
const jsonl = () => createJsonl({ maxLineBytes: 64, maxDepth: 10 }, ctx).stage(artifact);

const cases: Array<[string, () => StreamStage, string]> = [
  ['lines: LF, CRLF, empty lines, an over-long line, a final line without newline', lines, 'a\r\nbb\n\nccc\nthis one is too long\ndd\r\n\ne'],
  ['lines: ending in a newline', lines, 'one\ntwo\nthree\n'],
  ['lines: multi-byte characters split across chunks', lines, 'é\n€uro\n日本\nz'],
  ['jsonl: blank lines between values, a bad line, a final line without newline', jsonl, '{"a":1}\n\n  \n[2]\nnot json\n"s"\r\n\n3'],
];

describe('line boundaries reported by the loaders', () => {
  for (const [name, stage, text] of cases) {
    const input = Buffer.from(text);
    for (const size of [1, 2, 3, 5, 64]) {
      it(`${name} (chunks of ${size})`, async () => {
        const all = (await batches(stage, input, size)).flatMap((b) => b.records);
        let seen = 0;
        for (const b of await batches(stage, input, size)) {
          seen += b.records.length;
          expect(b.end).toBeDefined();
          // Read again from the boundary: exactly the records after this batch come out.
          const rest = (await batches(stage, input.subarray(b.end), size)).flatMap((x) => x.records);
          expect(rest).toEqual(all.slice(seen));
        }
        expect(seen).toBe(all.length);
      });
    }
  }

  it('LineSplitter.boundary stays put while a line is unfinished and moves past each newline', () => {
    const s = new LineSplitter({ maxLineBytes: 100 });
    const out: LineItem[] = [];
    s.push(Buffer.from('ab'), out);
    expect(s.boundary).toBe(0);
    s.push(Buffer.from('c\nde\nf'), out);
    expect(s.boundary).toBe(7);
    s.push(Buffer.from('g'), out);
    expect(s.boundary).toBe(7);
    s.end(out);
    expect(s.boundary).toBe(9);
    expect(out).toEqual(['abc', 'de', 'fg']);
  });
});
