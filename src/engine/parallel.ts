/**
 * The worker pool on the main thread. Each artifact is handed to the least busy worker; the main
 * thread opens it, feeds its raw bytes to the worker as the worker asks for them, and pushes the
 * worker's batches into the sink's queue, granting the next batch only once the queue took this
 * one. The contract is collectArtifact's: every artifact ends with one done / failed / interrupted batch.
 *
 * Starting a worker costs a few hundred milliseconds (a V8 isolate, the modules, the pipeline file).
 * The pool does not make the run wait for that: until a worker is ready, small artifacts are
 * decoded on the main thread, so a run of one small file ends before a worker could have started,
 * and a long run puts the start-up time to use. Should no worker start at all, every artifact is
 * decoded on the main thread (with a warning), as when threads are off.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { PipeError, toPipeError } from '../errors.js';
import type { Artifact, Batch, Logger } from '../types.js';
import { collectArtifact, openArtifact, openFailure, type ArtifactResume, type CollectPlan } from './collect.js';
import { takePrestarted, WORKER_URL } from './prestart.js';
import { workerPlan } from './worker-plan.js';
import { fromWire, toWire, type FromWorker, type ToWorker, type WireBatch, type WorkerInit } from './wire.js';

/**
 * Artifacts up to this size (as stored) may be decoded on the main thread while the workers start.
 * Small: decoding a few megabytes of JSON there would grow the main thread's heap for the rest of
 * the run (tens of megabytes), to save a quarter second.
 */
const MAIN_THREAD_MAX_BYTES = 64 * 1024;

/** Artifacts given to one worker at a time: the one it decodes and the next. */
const JOBS_PER_WORKER = 2;

interface Job {
  artifact: Artifact;
  next: () => Promise<IteratorResult<Buffer>>;
  push: (b: Batch) => Promise<void>;
  finished: () => void;
  ended: boolean;
  /** The batch being handed to the sink's queue: `finished` waits for it. */
  delivery: Promise<void>;
}

class PoolWorker {
  readonly thread: Worker;
  readonly jobs = new Map<number, Job>();
  readonly ready: Promise<void>;
  isReady = false;

  constructor(init: WorkerInit, log: Logger, onExit: (w: PoolWorker, err: Error) => void, readonly onFree: () => void) {
    this.thread = takePrestarted() ?? new Worker(WORKER_URL, { stdout: false, stderr: false });
    this.thread.unref();
    this.ready = new Promise((resolve, reject) => {
      this.thread.on('message', (m: FromWorker) => {
        if (m.t === 'ready') {
          this.isReady = true;
          resolve();
          this.onFree();
        } else if (m.t === 'init-failed') reject(fromWire(m.error));
        else if (m.t === 'log') log[m.level](m.message, m.fields);
        else this.#onJobMessage(m);
      });
      this.thread.on('error', (err) => {
        reject(err);
        onExit(this, err);
      });
      this.thread.on('exit', (code) => reject(new Error(`the worker exited with code ${code} before it was ready`)));
    });
    this.send({ t: 'init', init });
  }

  #elu: EventLoopUtilization | undefined;
  #eluAt = 0;
  #saturated = false;

  /**
   * Whether the thread has been busy most of the time lately (event loop utilization over the
   * last quarter second or more): then another worker would help.
   */
  saturated(): boolean {
    if (!this.isReady) return false;
    const now = performance.now();
    if (now - this.#eluAt >= 250) {
      const elu = this.thread.performance.eventLoopUtilization();
      if (this.#elu) this.#saturated = this.thread.performance.eventLoopUtilization(elu, this.#elu).utilization > 0.75;
      this.#elu = elu;
      this.#eluAt = now;
    }
    return this.#saturated;
  }

  send(m: ToWorker): void {
    this.thread.postMessage(m);
  }

  #onJobMessage(m: Extract<FromWorker, { id: number }>): void {
    const job = this.jobs.get(m.id);
    if (!job) return;
    if (m.t === 'pull') void this.#feed(m.id, job);
    else if (m.t === 'batch') job.delivery = job.delivery.then(() => this.#deliver(m.id, job, m.batch));
    else if (m.t === 'finished') {
      this.jobs.delete(m.id);
      this.onFree();
      void job.delivery.then(job.finished);
    }
  }

  async #feed(id: number, job: Job): Promise<void> {
    if (job.ended) return;
    try {
      const r = await job.next();
      if (r.done) {
        job.ended = true;
        this.send({ t: 'end', id });
      } else {
        this.send({ t: 'data', id, chunk: r.value });
      }
    } catch (err) {
      job.ended = true;
      this.send({ t: 'error', id, error: toWire(toPipeError(err, 'PIPE_ARTIFACT_UNREADABLE')) });
    }
  }

  #recycle(bytes: Uint8Array): void {
    const buffer = bytes.buffer as ArrayBuffer;
    // Only a buffer the bytes fill from its start is the worker's own (not a slice of something).
    if (bytes.byteOffset !== 0 || buffer.byteLength === 0) return;
    try {
      this.thread.postMessage({ t: 'recycle', buffer } satisfies ToWorker, [buffer]);
    } catch {
      // The worker has ended: the buffer is simply dropped.
    }
  }

  async #deliver(id: number, job: Job, wire: WireBatch): Promise<void> {
    const { failed, serialized, ...rest } = wire;
    // Each part's buffer goes back to this worker once the sink has written it.
    const parts = serialized?.map((p) => (typeof p.text === 'string' ? p : { ...p, release: () => this.#recycle(p.text as Uint8Array) }));
    const batch: Batch = { ...rest, artifact: job.artifact, rows: [], ...(parts ? { serialized: parts } : {}), ...(failed ? { failed: fromWire(failed) } : {}) };
    try {
      await job.push(batch);
      this.send({ t: 'credit', id });
    } catch {
      // The queue was closed by a fatal error (the run is ending): stop this artifact.
      this.send({ t: 'abort', id });
    }
  }
}

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
    while (worker.jobs.size >= JOBS_PER_WORKER && !signal.aborted && !this.#failure && !this.#closed) {
      await this.#slot(signal);
      worker = this.#leastBusy(this.#workers.filter((w) => w.isReady));
    }
    if (this.#failure) throw this.#failure;
    let raw;
    let at;
    try {
      ({ raw, at } = await openArtifact(artifact, resumeFrom, await this.#plan(), signal));
    } catch (err) {
      await push(openFailure(artifact, err, signal));
      return;
    }
    const it = (raw as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const id = this.#nextId++;
    const finished = new Promise<void>((resolve) => {
      worker.jobs.set(id, { artifact, next: () => it.next(), push, finished: resolve, ended: false, delivery: Promise.resolve() });
    });
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
    return ready.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
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
