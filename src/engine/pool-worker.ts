/**
 * One worker thread of the pool, seen from the main thread: its jobs (artifacts it decodes), the
 * bytes it asks for, the batches it hands back (each granted the next only once the sink's queue
 * took it), and the output buffers it gets back once written.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { toPipeError } from '../errors.js';
import type { Artifact, Batch, Logger } from '../types.js';
import { takePrestarted, WORKER_OPTIONS, WORKER_URL } from './prestart.js';
import { fromWire, toWire, type FromWorker, type ToWorker, type WireBatch, type WorkerInit } from './wire.js';

export interface Job {
  artifact: Artifact;
  next: () => Promise<IteratorResult<Buffer>>;
  push: (b: Batch) => Promise<void>;
  finished: () => void;
  ended: boolean;
  /** The batch being handed to the sink's queue: `finished` waits for it. */
  delivery: Promise<void>;
}

export class PoolWorker {
  readonly thread: Worker;
  readonly jobs = new Map<number, Job>();
  /** Artifacts handed to this worker that are still being opened (not in `jobs` yet). */
  reserved = 0;
  readonly ready: Promise<void>;
  isReady = false;

  constructor(init: WorkerInit, log: Logger, onExit: (w: PoolWorker, err: Error) => void, readonly onFree: () => void) {
    this.thread = takePrestarted() ?? new Worker(WORKER_URL, WORKER_OPTIONS);
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

  /** Artifacts this worker holds or is about to: what the pool balances. */
  get load(): number {
    return this.jobs.size + this.reserved;
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
