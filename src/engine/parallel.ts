/**
 * The worker pool on the main thread. Each artifact goes to the worker that frees up first (a
 * worker holds at most two: the one it decodes and the next); the main thread opens it, feeds its
 * raw bytes to the worker as the worker asks for them, and pushes the worker's batches into the
 * sink's queue, granting the next batch only once the queue took this one (pool-worker.ts). The
 * contract is collectArtifact's: every artifact ends with one done / failed / interrupted batch.
 *
 * Starting a worker costs about a tenth of a second (a V8 isolate, Node's bootstrap, the engine's
 * modules); bin/pipe.js starts up to two before the CLI loads (prestart.ts), and the pool adopts
 * them. The pool does not make the run wait for a worker either: until a worker is ready, small
 * artifacts are decoded on the main thread, so a run of one small file ends before a worker could
 * have started, and a long run puts the start-up time to use. Should no worker start at all, every artifact is
 * decoded on the main thread (with a warning), as when threads are off.
 */
import { PipeError } from '../errors.js';
import type { Artifact, Batch, Logger } from '../types.js';
import { collectArtifact, openArtifact, openFailure, type ArtifactResume, type CollectPlan } from './collect.js';
import { PoolWorker } from './pool-worker.js';
import { workerPlan } from './worker-plan.js';
import type { WorkerInit } from './wire.js';

/**
 * Artifacts up to this size (as stored) may be decoded on the main thread while the workers start.
 * Small: decoding a few megabytes of JSON there would grow the main thread's heap for the rest of
 * the run (tens of megabytes), to save a quarter second.
 */
const MAIN_THREAD_MAX_BYTES = 64 * 1024;

/** Artifacts given to one worker at a time: the one it decodes and the next. */
const JOBS_PER_WORKER = 2;

export class WorkerPool {
  #workers: PoolWorker[] = [];
  #size: number;
  #nextId = 1;
  #failure: Error | undefined;
  #init: WorkerInit;
  #log: Logger;
  /** Settles once a worker is ready (true), or once every one started has failed (false). */
  #anyReady: Promise<boolean> | undefined;
  /** The main thread's own plan, built on first use. */
  #mainPlan: Promise<CollectPlan> | undefined;
  /** Every worker failed to start: the main thread decodes everything. */
  #mainOnly = false;
  /** Artifacts being collected through the pool. */
  #active = 0;
  #readies: Array<Promise<boolean>> = [];
  #closed = false;
  #recheck: NodeJS.Timeout | undefined;
  /** An artifact is being decoded on the main thread. */
  #mainBusy = false;

  constructor(size: number, init: WorkerInit, log: Logger) {
    this.#size = size;
    this.#init = init;
    this.#log = log;
  }

  /** Whether this build can run workers (compiled JavaScript; tests importing TypeScript cannot). */
  static available(): boolean {
    return import.meta.url.endsWith('.js');
  }

  /**
   * Resolves without waiting for workers (see the file comment). Only a pipeline the main thread
   * cannot build either is an error here, as it would have been for the workers.
   */
  async ready(): Promise<void> {
    await this.#plan();
  }

  #plan(): Promise<CollectPlan> {
    this.#mainPlan ??= workerPlan(this.#init, this.#log);
    return this.#mainPlan;
  }

  /**
   * Starts workers as work needs them: the first when a second artifact is in flight or a large
   * one comes, then one more whenever there are more artifacts in flight than workers, up to the
   * pool's size: at once when the artifact is large (decoding will keep every core busy), and for
   * small ones only once every worker is busy most of the time. An isolate costs memory (20 MB or
   * so) and start-up time, so a run of one big artifact starts one worker, and so does a run of
   * many tiny artifacts, which the main thread's per-artifact work limits rather than decoding.
   */
  #spawn(small = true): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    const more = this.#workers.length === 0 || (this.#active > this.#workers.length && (!small || this.#workers.every((w) => w.saturated())));
    if (!this.#mainOnly && this.#workers.length < this.#size && more) {
      const w = new PoolWorker(this.#init, this.#log, (x, err) => this.#lost(x, err), () => this.#wakeOne());
      this.#workers.push(w);
      this.#readies.push(w.ready.then(() => true));
      // Artifacts waiting for room (the first worker ready took two) may go to this one now.
      w.ready.then(() => {
        for (let i = 0; i < JOBS_PER_WORKER; i++) this.#wakeOne();
      }, () => undefined);
      // Artifacts already in flight may keep the workers busy for long: look again now and then.
      if (this.#workers.length < this.#size) this.#recheck ??= setInterval(() => void this.#spawn(), 250).unref();
      else clearInterval(this.#recheck);
      // True at the first worker ready; false once every worker started so far has failed.
      this.#anyReady = Promise.any(this.#readies).catch(() => false);
      if (this.#workers.length === 1) {
        // What stops the first worker stops any other: the main thread decodes everything.
        w.ready.catch((err: Error) => {
          if (this.#closed) return;
          this.#mainOnly = true;
          this.#log.warn(`worker threads unavailable, decoding on the main thread: ${err.message}`);
        });
      }
    }
    return this.#anyReady ?? Promise.resolve(false);
  }

  /** Same contract as collectArtifact. */
  async collect(artifact: Artifact, resumeFrom: number | ArtifactResume, push: (b: Batch) => Promise<void>, signal: AbortSignal): Promise<void> {
    this.#active++;
    try {
      await this.#collect(artifact, resumeFrom, push, signal);
    } finally {
      this.#active--;
    }
  }

  async #collect(artifact: Artifact, resumeFrom: number | ArtifactResume, push: (b: Batch) => Promise<void>, signal: AbortSignal): Promise<void> {
    if (this.#failure) throw this.#failure;
    const small = artifact.size !== undefined && artifact.size <= MAIN_THREAD_MAX_BYTES;
    if (this.#active > 1 || !small) void this.#spawn(small);
    let ready = this.#workers.filter((w) => w.isReady);
    if (ready.length === 0) {
      // No worker yet: one small artifact at a time is decoded here rather than wait (one, so
      // that the main thread's heap stays small); others wait, unless no worker can start.
      if (this.#mainOnly || (small && !this.#mainBusy) || !this.#anyReady || !(await this.#anyReady)) {
        this.#mainBusy = true;
        try {
          await collectArtifact(artifact, resumeFrom, await this.#plan(), push, signal);
        } finally {
          this.#mainBusy = false;
        }
        return;
      }
      if (this.#failure) throw this.#failure;
      ready = this.#workers.filter((w) => w.isReady);
    }
    // A worker decodes its artifacts one after the other, with at most one more waiting (its bytes
    // already on their way): the next artifact goes to whichever worker frees up first, so that
    // the last ones do not queue behind a busy worker while another has nothing to do.
    let worker = this.#leastBusy(ready);
    while (worker.load >= JOBS_PER_WORKER && !signal.aborted && !this.#failure && !this.#closed) {
      await this.#slot(signal);
      worker = this.#leastBusy(this.#workers.filter((w) => w.isReady));
    }
    if (this.#failure) throw this.#failure;
    // Its place is taken now, before opening (which waits): artifacts chosen meanwhile count it.
    worker.reserved++;
    let raw;
    let at;
    try {
      ({ raw, at } = await openArtifact(artifact, resumeFrom, await this.#plan(), signal));
    } catch (err) {
      worker.reserved--;
      this.#wakeOne();
      await push(openFailure(artifact, err, signal));
      return;
    }
    const it = (raw as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const id = this.#nextId++;
    const finished = new Promise<void>((resolve) => {
      worker.reserved--;
      worker.jobs.set(id, { artifact, next: () => it.next(), push, finished: resolve, ended: false, delivery: Promise.resolve() });
    });
    this.#log.debug(`decoding ${artifact.uri} on thread ${this.#workers.indexOf(worker) + 1} (${worker.load} held)`);
    const onAbort = (): void => worker.send({ t: 'abort', id });
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const { open: _o, settle: _s, ...ref } = artifact;
      worker.send({ t: 'start', id, ref, resumeFrom: typeof resumeFrom === 'number' ? resumeFrom : resumeFrom.position, ...(at ? { at } : {}) });
      if (signal.aborted) onAbort();
      await finished;
    } finally {
      signal.removeEventListener('abort', onAbort);
      await it.return?.().catch(() => undefined);
    }
  }

  #waiting: Array<() => void> = [];

  /** Settles when a worker may have room for another artifact (or the run is stopping). */
  #slot(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#waiting.push(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #wakeOne(): void {
    this.#waiting.shift()?.();
  }

  #leastBusy(ready: PoolWorker[]): PoolWorker {
    return ready.reduce((a, b) => (b.load < a.load ? b : a));
  }

  #lost(w: PoolWorker, err: Error): void {
    // One that never started had no work: the others (or the main thread) take it all.
    if (!w.isReady) return;
    this.#failure ??= new PipeError('PIPE_INTERNAL', `a worker thread failed: ${err.message}`, { cause: err });
    for (const job of w.jobs.values()) job.finished();
    w.jobs.clear();
    for (const wake of this.#waiting.splice(0)) wake();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#recheck);
    for (const wake of this.#waiting.splice(0)) wake();
    await Promise.all(this.#workers.map((w) => w.thread.terminate()));
  }
}
