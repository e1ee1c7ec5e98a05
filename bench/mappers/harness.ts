/**
 * What every bench file reports, and the timing loop they share. A bench measures its component
 * and a bare baseline (JSON.parse, String.split) over the same in-memory data in the same process,
 * so the ratio says what the component costs on top of the unavoidable work, on any machine.
 */
import { pathToFileURL } from 'node:url';

export interface BenchResult {
  name: string;
  rows: number;
  /** Input size in MB (10^6 bytes of UTF-8). */
  mb: number;
  seconds: number;
  rowsPerSec: number;
  mbPerSec: number;
  baselineSeconds: number;
  /** seconds / baselineSeconds: 1.0 means free on top of the baseline. */
  ratio: number;
}

/** Best of `rounds` timings of `fn`, after one warm-up call; `fn` returns a count so work is not optimised away. */
export function timeBest(fn: () => number, rounds = 3): { seconds: number; count: number } {
  let count = fn();
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    count = fn();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (s < best) best = s;
  }
  return { seconds: best, count };
}

export function result(name: string, rows: number, bytes: number, seconds: number, baselineSeconds: number): BenchResult {
  const mb = bytes / 1e6;
  return {
    name,
    rows,
    mb: round(mb),
    seconds: round(seconds),
    rowsPerSec: Math.round(rows / seconds),
    mbPerSec: round(mb / seconds),
    baselineSeconds: round(baselineSeconds),
    ratio: round(seconds / baselineSeconds),
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** Seeded PRNG (mulberry32): the generated data is the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs a bench when its compiled file is executed directly (`node dist-bench/.../x.bench.js`). */
export function runIfMain(metaUrl: string, run: () => Promise<BenchResult>): void {
  if (process.argv[1] && pathToFileURL(process.argv[1]).href === metaUrl) {
    run().then(
      (r) => console.log(JSON.stringify(r)),
      (err: unknown) => {
        console.error(err);
        process.exitCode = 1;
      },
    );
  }
}
