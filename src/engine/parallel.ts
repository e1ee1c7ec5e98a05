/**
 * The worker pool on the main thread. Each artifact is handed to the least busy worker; the main
 * thread opens it, feeds its raw bytes to the worker as the worker asks for them, and pushes the
 * worker's batches into the sink's queue, granting the next batch only once the queue took this
 * one. The contract is collectArtifact's: every artifact ends with one done / failed / interrupted batch.
 */
import { Worker } from 'node:worker_threads';
import { PipeError, toPipeError } from '../errors.js';
import type { Artifact, Batch, Logger } from '../types.js';
import { openFailure } from './collect.js';
import { fromWire, toWire, type FromWorker, type ToWorker, type WireBatch, type WorkerInit } from './wire.js';

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

  constructor(url: URL, init: WorkerInit, log: Logger, onExit: (w: PoolWorker, err: Error) => void) {
    this.thread = new Worker(url, { workerData: init, stdout: false, stderr: false });
    this.thread.unref();
    this.ready = new Promise((resolve, reject) => {
      this.thread.on('message', (m: FromWorker) => {
        if (m.t === 'ready') resolve();
        else if (m.t === 'init-failed') reject(fromWire(m.error));
        else if (m.t === 'log') log[m.level](m.message, m.fields);
        else this.#onJobMessage(m);
      });
      this.thread.on('error', (err) => {
        reject(err);
        onExit(this, err);
      });
    });
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

  async #deliver(id: number, job: Job, wire: WireBatch): Promise<void> {
    const { failed, ...rest } = wire;
    const batch: Batch = { ...rest, artifact: job.artifact, rows: [], ...(failed ? { failed: fromWire(failed) } : {}) };
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
  #nextId = 1;
  #failure: Error | undefined;

  constructor(size: number, init: WorkerInit, log: Logger) {
    const url = new URL('./worker.js', import.meta.url);
    for (let i = 0; i < size; i++) {
      this.#workers.push(new PoolWorker(url, init, log, (w, err) => this.#lost(w, err)));
    }
  }

  /** Whether this build can run workers (compiled JavaScript; tests importing TypeScript cannot). */
  static available(): boolean {
    return import.meta.url.endsWith('.js');
  }

  async ready(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.ready));
  }

  /** Same contract as collectArtifact. */
  async collect(artifact: Artifact, resumeFrom: number, push: (b: Batch) => Promise<void>, signal: AbortSignal): Promise<void> {
    if (this.#failure) throw this.#failure;
    const worker = this.#workers.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
    let raw;
    try {
      raw = await artifact.open({ signal });
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
      const { open: _o, ...ref } = artifact;
      worker.send({ t: 'start', id, ref, resumeFrom });
      if (signal.aborted) onAbort();
      await finished;
    } finally {
      signal.removeEventListener('abort', onAbort);
      await it.return?.().catch(() => undefined);
    }
  }

  #lost(w: PoolWorker, err: Error): void {
    this.#failure ??= new PipeError('PIPE_INTERNAL', `a worker thread failed: ${err.message}`, { cause: err });
    for (const job of w.jobs.values()) job.finished();
    w.jobs.clear();
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.thread.terminate()));
  }
}
