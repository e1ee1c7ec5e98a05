import { RecordBatch } from '../../src/types.js';
/** The async side of bench/mappers/harness.ts: loaders are stages, so their timings await. */

/** Best of `rounds` timings of `fn`, after one warm-up call; `fn` returns a count so work is not optimised away. */
export async function timeBestAsync(fn: () => Promise<number>, rounds = 3): Promise<{ seconds: number; count: number }> {
  let count = await fn();
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    count = await fn();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (s < best) best = s;
  }
  return { seconds: best, count };
}

/** Buffers as a stage's source, the way a file or S3 body delivers them. */
export async function* chunked(data: Buffer, size = 64 * 1024): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

type Stage = (source: AsyncIterable<unknown>, options: { signal: AbortSignal }) => AsyncIterable<unknown>;

/** Records out of a generator stage, counted (the engine's own loop minus the mappers). */
export async function countRecords(stage: unknown, source: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const item of (stage as Stage)(source, { signal: new AbortController().signal })) n += item instanceof RecordBatch ? item.records.length : 1;
  return n;
}
