/**
 * Decoding threads started before the rest of the CLI is loaded. A worker takes about a tenth of a
 * second to start (an isolate, Node's bootstrap, the engine's modules); `bin/pipe.js` starts them
 * first, for the commands that decode (`run`, `backfill`), so that time overlaps the main thread's
 * own start (the CLI's modules, the pipeline file, the state) instead of following it. A pool
 * adopts them and sends each its configuration (`init`); any left over when the command ends is
 * terminated. This module imports nothing but Node's own: it runs before everything else.
 */
import { availableParallelism } from 'node:os';
import { Worker, type WorkerOptions } from 'node:worker_threads';

const started: Worker[] = [];

export const WORKER_URL = new URL('./worker.js', import.meta.url);

/**
 * How every decoding thread starts. Its young generation is capped at 16 MB (V8 gives a worker
 * about three times that): rows now die young in a worker, and with the smaller nursery the
 * peak RSS of 10,000 small artifacts went from 189 to 174 MB, of the 1 GB document from 179 to
 * 165 MB, of the VPC Flow bench from 278 to 235 MB, with no change in time (interleaved runs:
 * 1.00, 1.01, 1.02). 8 MB cost 8 % of the time.
 */
export const WORKER_OPTIONS: WorkerOptions = { stdout: false, stderr: false, resourceLimits: { maxYoungGenerationSizeMb: 16 } };

/** How many threads the command line asks for, or 0 when this command decodes nothing here. */
export function prestartCount(args: string[]): number {
  if (args[0] !== 'run' && args[0] !== 'backfill') return 0;
  let threads = availableParallelism();
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a === '-h' || a === '--help' || a === '--dry-run') return 0;
    const value = a === '--threads' ? args[i + 1] : a.startsWith('--threads=') ? a.slice('--threads='.length) : undefined;
    if (value === undefined) continue;
    const n = Number(value);
    // Whatever the CLI will make of a bad value, starting nothing is right.
    threads = Number.isInteger(n) && n >= 0 && n <= 64 ? n : 0;
  }
  return threads;
}

/**
 * At most this many start early, whatever the core count: a run of many tiny artifacts may never
 * use them (each idle isolate holds 20 MB or so), and the pool starts more as work needs them.
 */
export const PRESTART_MAX = 2;

export function prestartWorkers(args: string[]): void {
  const n = Math.min(PRESTART_MAX, prestartCount(args));
  for (let i = 0; i < n; i++) {
    const w = new Worker(WORKER_URL, WORKER_OPTIONS);
    w.unref();
    // Until a pool adopts it (and listens), a worker that fails to start is only dropped.
    w.on('error', () => undefined);
    w.once('exit', () => {
      const at = started.indexOf(w);
      if (at >= 0) started.splice(at, 1);
    });
    started.push(w);
  }
}

/** A started worker that no pool has taken yet. */
export function takePrestarted(): Worker | undefined {
  return started.shift();
}

/** Ends the workers no pool took (a pipeline that cannot use threads). */
export async function endPrestarted(): Promise<void> {
  await Promise.all(started.splice(0).map((w) => w.terminate()));
}
