/**
 * Running one pipeline: take the lock, recover the sink, list artifacts, read up to `concurrency`
 * of them at once into a bounded channel, and let the sink commit rows with the positions they
 * cover. A stop request (SIGINT/SIGTERM) stops listing and reading, then flushes and commits what
 * was read; a fatal error (the sink failing, the lock lost) stops everything without committing more.
 */
import { EventEmitter } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PipeError, toPipeError } from '../errors.js';
import { LISTING_STREAM, STREAMS_STREAM, type Lock, type RunSummary, type StateStore } from '../state/store.js';
import { batchRows, type Artifact, type ArtifactOutcome, type Batch, type ComponentContext, type ListContext, type Logger, type SourceScope } from '../types.js';
import type { BuiltPipeline } from './build.js';
import { Channel } from './channel.js';
import { collectArtifact, type ArtifactResume } from './collect.js';
import { collectStreams } from './streams.js';
import { WorkerPool } from './parallel.js';
import { endPrestarted } from './prestart.js';
import type { WorkerInit } from './wire.js';

export interface RunOptions {
  pipeline: string;
  command: 'run' | 'backfill';
  store: StateStore;
  host: string;
  runId: string;
  once: boolean;
  retryFailed: boolean;
  dryRun: boolean;
  scope: SourceScope;
  /** Aborted on SIGINT/SIGTERM: stop reading, flush, commit. */
  stop: AbortSignal;
  log: Logger;
  leaseMs?: number;
  /** Worker threads for decoding artifacts (0: all on the main thread). */
  threads?: number;
  /**
   * Stop early when this many artifacts in a row fail with the same error code (expired
   * credentials, AccessDenied on the whole bucket, a full disk) instead of recording thousands of
   * identical failures. Isolated bad artifacts never trip it. 0 disables.
   */
  failureLimit?: number;
  /** The sink was written with another state file and the user accepts collecting it all again. */
  acceptNewState?: boolean;
  /** The pipeline's loaders and mappers as worker threads build them (no workers without it). */
  workerPlan?: Omit<WorkerInit, 'partition'>;
}

/** Live counters: the CLI renders them as a progress bar or JSON progress lines. */
export interface RunStats {
  startedAt: number;
  discovered: number;
  unchanged: number;
  previouslyFailed: number;
  inFlight: number;
  done: number;
  failed: number;
  rows: number;
  rowErrors: number;
  skipped: number;
  filtered: number;
  bytesIn: number;
  listingDone: boolean;
  /** Artifacts that vanished between listing and reading, recorded as skipped. */
  vanished?: number;
}

export interface DryRunItem {
  uri: string;
  size?: number;
  state: string;
}

export interface RunEvents {
  failed: [{ uri: string; code: string; message: string; position?: unknown }];
  vanished: [{ uri: string; code: string; message: string }];
  dryRun: [DryRunItem];
}

export class PipelineRun extends EventEmitter<RunEvents> {
  readonly stats: RunStats = {
    startedAt: Date.now(), discovered: 0, unchanged: 0, previouslyFailed: 0, inFlight: 0, done: 0, failed: 0,
    rows: 0, rowErrors: 0, skipped: 0, filtered: 0, bytesIn: 0, listingDone: false, vanished: 0,
  };
  #opts: RunOptions;
  #built: BuiltPipeline;
  #ctx: ComponentContext;

  constructor(opts: RunOptions, built: BuiltPipeline, ctx: ComponentContext) {
    super();
    this.#opts = opts;
    this.#built = built;
    this.#ctx = ctx;
  }

  /** Runs to the end; returns the summary with the exit code (0, 1 or 130). Throws for 3 (lock). */
  async run(): Promise<RunSummary> {
    const { store, pipeline: name, log } = this.#opts;
    const leaseMs = this.#opts.leaseMs ?? 30_000;
    const lock = await store.acquireLock(name, { pid: process.pid, host: this.#opts.host, runId: this.#opts.runId }, leaseMs);
    if (lock.takenOverFrom) {
      const { owner, reason } = lock.takenOverFrom;
      log.warn(`${name}: lock taken over from pid ${owner.pid} on ${owner.host} (${reason}; run ${owner.runId} did not finish): its uncommitted work is collected again`,
        { event: 'lock_taken_over', pid: owner.pid, host: owner.host, runId: owner.runId, reason });
    }
    const fatal = new AbortController();
    const heartbeat = setInterval(() => {
      store.renewLock(lock).catch((err: Error) => fatal.abort(err));
    }, Math.max(100, leaseMs / 3));
    heartbeat.unref();
    await store.beginRun(name, { runId: this.#opts.runId, command: this.#opts.command, startedAt: new Date().toISOString(), pid: process.pid });
    let error: PipeError | undefined;
    try {
      await this.#collect(lock, fatal);
    } catch (err) {
      const cause = fatal.signal.aborted ? fatal.signal.reason : err;
      error = (cause as { code?: string }).code === 'SQLITE_BUSY'
        ? new PipeError('PIPE_LOCKED', `state file ${store.location} stayed busy for 15 s: another process holds a write transaction (a stalled run?)`, { cause })
        : toPipeError(cause, 'PIPE_INTERNAL');
      // A run that stalled past its lease may first trip on what that cost it (its temporary
      // files cleaned up by the run that took over): the lost lock is the cause to report.
      if (error.code !== 'PIPE_LOCK_LOST') {
        const lost = await store.renewLock(lock).then(() => undefined, (e: unknown) => e as PipeError);
        if (lost?.code === 'PIPE_LOCK_LOST') error = lost;
      }
    } finally {
      clearInterval(heartbeat);
      await this.#built.sink.close().catch(() => undefined);
    }
    const s = this.stats;
    if (!error && this.#halt.signal.aborted) error = this.#halt.signal.reason as PipeError;
    const exitCode = error ? (error.code === 'PIPE_LOCK_LOST' ? 3 : 1) : this.#opts.stop.aborted ? 130 : s.failed > 0 ? 1 : 0;
    const summary: RunSummary = {
      artifacts: s.done + s.failed, failed: s.failed, rows: s.rows, rowErrors: s.rowErrors, skipped: s.skipped, bytes: s.bytesIn, exitCode,
    };
    if (error?.code !== 'PIPE_LOCK_LOST') {
      await store.endRun(name, this.#opts.runId, summary).catch(() => undefined);
      await store.releaseLock(lock).catch(() => undefined);
    }
    if (error) {
      log.error(error.message, { code: error.code });
      (summary as RunSummary & { error?: PipeError }).error = error;
    }
    return summary;
  }

  async #collect(lock: Lock, fatal: AbortController): Promise<void> {
    const { sink } = this.#built;
    const { store } = this.#opts;
    await sink.open({
      ...this.#ctx, runId: this.#opts.runId, signal: fatal.signal, acceptNewState: this.#opts.acceptNewState === true,
      commit: async (files, batches) => {
        await store.commit(lock, files, batches);
        this.#committed(batches);
      },
    });
    try {
      await this.#pump(lock, fatal);
    } finally {
      // Whatever was handed out and not finished is this run's no more (a queue leaves its message).
      for (const identity of [...this.#handedOut.keys()]) this.#settle(identity, 'stopped');
    }
  }

  async #pump(lock: Lock, fatal: AbortController): Promise<void> {
    const { source, sink } = this.#built;
    const { stop } = this.#opts;
    const reading = AbortSignal.any([stop, fatal.signal, this.#halt.signal]);
    const stats = this.stats;
    const channel = new Channel<Batch>(Math.max(4, (source.concurrency ?? 4) * 2));
    const push = async (b: Batch): Promise<void> => {
      if (b.streams) {
        stats.bytesIn += b.bytes;
      } else {
        // An artifact's batches count its bytes so far; progress wants the increase.
        stats.bytesIn += b.bytes - (this.#bytesSeen.get(b.artifact.identity) ?? 0);
        this.#bytesSeen.set(b.artifact.identity, b.bytes);
      }
      // Watched as batches end artifacts, before their commit: a storm of instant failures would
      // otherwise be read whole before the first of them is committed.
      this.#watchFailures(b);
      await channel.push(b);
    };
    const producer = this.#produce(lock, reading, push).then(
      () => channel.close(),
      (err: Error) => {
        channel.close();
        throw err;
      },
    );
    const writer = new Writable({
      objectMode: true,
      highWaterMark: 2,
      write: (batch: Batch, _enc, cb) => { sink.write(batch).then(() => cb(), cb); },
      final: (cb) => { sink.flush().then(() => cb(), cb); },
    });
    const consumer = pipeline(Readable.from(channel), writer, { signal: fatal.signal }).catch((err: Error) => {
      channel.close(err);
      fatal.abort(err);
      throw err;
    });
    const [p, c] = await Promise.allSettled([producer, consumer]);
    if (c.status === 'rejected') throw c.reason;
    if (p.status === 'rejected') throw p.reason;
  }

  #bytesSeen = new Map<string, number>();

  /** Stops reading (then flushes and commits as for SIGINT) when the failure monitor trips. */
  #halt = new AbortController();
  #streak = { code: '', count: 0 };

  /** The error monitor: a streak of identical failures with no success in between. */
  #watchFailures(b: Batch): void {
    const limit = this.#opts.failureLimit ?? 25;
    if (b.done) this.#streak = { code: '', count: 0 };
    if (!b.failed || limit <= 0) return;
    this.#streak = b.failed.code === this.#streak.code ? { code: b.failed.code, count: this.#streak.count + 1 } : { code: b.failed.code, count: 1 };
    if (this.#streak.count >= limit && !this.#halt.signal.aborted) {
      this.#halt.abort(new PipeError('PIPE_SOURCE_FAILED',
        `stopped early: the last ${this.#streak.count} artifacts all failed with ${b.failed.code} (latest: ${b.failed.message}); `
        + 'fix the cause, then run again (failed artifacts are retried with --retry-failed)'));
    }
  }

  #committed(batches: Batch[]): void {
    const s = this.stats;
    for (const b of batches) {
      s.rows += batchRows(b);
      s.rowErrors += b.rowErrors.length;
      s.skipped += b.skipped;
      s.filtered += b.filtered;
      if (b.done) s.done++;
      if (b.failed) {
        s.failed++;
        this.emit('failed', { uri: b.artifact.uri, code: b.failed.code, message: b.failed.message, position: b.failed.position });
      }
      if (b.vanished) {
        s.vanished = (s.vanished ?? 0) + 1;
        this.emit('vanished', { uri: b.artifact.uri, code: b.vanished.code, message: b.vanished.message });
      }
      if (b.done || b.failed || b.vanished) {
        this.#bytesSeen.delete(b.artifact.identity);
        if (!b.streams) this.#settle(b.artifact.identity, b.failed ? 'failed' : 'done');
      }
    }
  }

  /** Artifacts being collected by this run, by identity, with any duplicates handed out meanwhile. */
  #handedOut = new Map<string, Artifact[]>();

  #settle(identity: string, outcome: ArtifactOutcome): void {
    const all = this.#handedOut.get(identity);
    this.#handedOut.delete(identity);
    for (const a of all ?? []) a.settle?.(outcome);
  }

  async #produce(lock: Lock, signal: AbortSignal, push: (b: Batch) => Promise<void>): Promise<void> {
    const { source, plan } = this.#built;
    const { store, pipeline: name } = this.#opts;
    const stats = this.stats;
    const ctx: ListContext = {
      signal, scope: this.#opts.scope, once: this.#opts.once, retryFailed: this.#opts.retryFailed, log: this.#opts.log,
      position: (stream) => store.position(name, stream),
      positionStreams: (prefix) => store.positionStreams(name, prefix),
      savePosition: async (stream, value) => {
        // Shared state: only the holder of the listing claim moves listing marks; every worker
        // takes objects, and the claims on them keep each collected once.
        if (store.shared && !(await store.claimStream(lock, LISTING_STREAM))) return;
        await store.setPosition(lock, stream, value);
      },
      artifactState: (identity) => store.artifact(name, identity),
      recordSkipped: async (ref, reason) => {
        await store.skipArtifact(name, ref, reason);
        stats.vanished = (stats.vanished ?? 0) + 1;
        this.emit('vanished', { uri: ref.uri, code: 'PIPE_SKIPPED', message: reason });
      },
    };
    if (source.kind === 'streams') {
      // Streams are decoded here, on the main thread: threads started early are not needed.
      void endPrestarted();
      try {
        // --dry-run collects nothing: a stream source may say what it would read.
        if (this.#opts.dryRun) for await (const item of source.dryRun?.(ctx) ?? []) this.emit('dryRun', item);
        else if (await this.#claimStreams(lock, signal)) await collectStreams(source, ctx, plan, push);
      } finally {
        stats.listingDone = true;
      }
      return;
    }
    const running = new Set<Promise<void>>();
    const pool = await this.#startPool();
    const collect = pool
      ? (a: Artifact, from: ArtifactResume) => pool.collect(a, from, push, signal)
      : (a: Artifact, from: ArtifactResume) => collectArtifact(a, from, plan, push, signal);
    // With workers, keep every thread busy while the main thread waits on I/O.
    const limit = Math.max(source.concurrency ?? 4, (this.#opts.threads ?? 0) * 2);
    try {
      for await (const artifact of source.list(ctx)) {
        if (signal.aborted) break;
        stats.discovered++;
        const resumeFrom = await this.#admit(lock, artifact);
        if (resumeFrom === undefined) continue;
        stats.inFlight++;
        const task = collect(artifact, resumeFrom).finally(() => {
          stats.inFlight--;
          running.delete(task);
        });
        // Its failure reaches the run through the batches it pushed (or the sink's error); a
        // rejection nobody awaits must not crash the process once it has left `running`.
        task.catch(() => undefined);
        running.add(task);
        if (running.size >= limit) await Promise.race(running);
      }
    } finally {
      stats.listingDone = true;
      await Promise.allSettled(running);
      await pool?.close();
    }
  }

  /** Worker threads when every stage allows them; on any trouble starting them, the main thread does the work. */
  async #startPool(): Promise<WorkerPool | undefined> {
    const threads = this.#opts.threads ?? 0;
    const { parallel, sink } = this.#built;
    const plan = this.#opts.workerPlan;
    if (threads <= 0 || !parallel || !sink.serializer || !plan || !WorkerPool.available()) {
      void endPrestarted();
      return undefined;
    }
    const pool = new WorkerPool(threads, { ...plan, partition: sink.serializer.partition }, this.#opts.log);
    try {
      await pool.ready();
      return pool;
    } catch (err) {
      this.#opts.log.warn(`worker threads unavailable, decoding on the main thread: ${(err as Error).message}`);
      await pool.close();
      return undefined;
    }
  }

  /**
   * Shared state: the streams of a streams source are read by one worker at a time. The others
   * wait for the claim (the holder may die), or leave at once with `--once`.
   */
  async #claimStreams(lock: Lock, signal: AbortSignal): Promise<boolean> {
    const { store, log, pipeline: name } = this.#opts;
    if (!store.shared) return true;
    let told = false;
    while (!signal.aborted) {
      if (await store.claimStream(lock, STREAMS_STREAM)) return true;
      if (this.#opts.once) break;
      if (!told) log.info(`${name}: another worker reads this pipeline's streams; waiting to take over if it stops`);
      told = true;
      await new Promise((r) => setTimeout(r, Math.max(100, lock.leaseMs / 3)).unref());
    }
    return false;
  }

  /** Decides whether an artifact is collected, and from which record. */
  async #admit(lock: Lock, artifact: Artifact): Promise<ArtifactResume | undefined> {
    const { store, pipeline: name } = this.#opts;
    const stats = this.stats;
    // The same object named twice while this run collects it (two notifications): settled with it.
    const collecting = this.#handedOut.get(artifact.identity);
    if (collecting) {
      collecting.push(artifact);
      stats.unchanged++;
      return undefined;
    }
    const state = await store.artifact(name, artifact.identity);
    if (this.#opts.dryRun) {
      // Says what would happen and changes nothing, not even a queue's messages.
      if (state?.status === 'done' || state?.status === 'skipped') stats.unchanged++;
      else if (state?.status === 'failed' && !this.#opts.retryFailed) stats.previouslyFailed++;
      else this.emit('dryRun', { uri: artifact.uri, ...(artifact.size !== undefined ? { size: artifact.size } : {}), state: state?.status ?? 'new' });
      artifact.settle?.('stopped');
      return undefined;
    }
    if (state?.status === 'done' || state?.status === 'skipped') {
      stats.unchanged++;
      artifact.settle?.('done');
      return undefined;
    }
    if (state?.status === 'failed' && !this.#opts.retryFailed) {
      stats.previouslyFailed++;
      artifact.settle?.('failed');
      return undefined;
    }
    const started = await store.startArtifact(lock, artifact);
    if (!started) {
      // Shared state: finished meanwhile, or another worker holds it.
      const now = await store.artifact(name, artifact.identity);
      stats.unchanged++;
      artifact.settle?.(now?.status === 'done' || now?.status === 'skipped' ? 'done' : now?.status === 'failed' ? 'failed' : 'elsewhere');
      return undefined;
    }
    this.#handedOut.set(artifact.identity, [artifact]);
    // The committed position, and where the artifact may be opened again (ArtifactState.resumeAt).
    return started;
  }
}
