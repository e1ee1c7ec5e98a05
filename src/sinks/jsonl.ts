/**
 * The JSONL sink and its exactly-once commit protocol.
 *
 * Rows are appended to chunk files under `<dir>/.pipe-tmp/<pipeline>/<run id>/`. When a chunk rotates
 * (maxRows, maxBytes, flushInterval, or the end of the run) its files are fsynced, then ONE state
 * transaction records them together with the positions of every batch they hold, and only then are
 * they renamed to `<dir>/[dt=…/]<run id>-<sequence>.jsonl[.gz]`. On start, chunks recorded but not
 * yet renamed are rolled forward and temporary files no commit recorded are deleted, so a kill -9
 * at any instant neither loses nor duplicates a row. Many workers may share the directory (shared
 * state): chunk names carry the run id, a run leaves the temporary files of live runs alone (and of runs that register while it looks), and a
 * chunk rolled forward by another run's recovery is found already in place by its own rename. Row errors go to `<dir>/_errors/` in the
 * same chunk, so the dead-letter files are exactly-once too.
 */
import { join, resolve } from 'node:path';
import { PipeError } from '../errors.js';
import { failpoint } from '../failpoint.js';
import { pingWritable } from '../ping.js';
import type { ComponentSpec } from '../spec.js';
import { batchRows, type Batch, type RowSerializer, type Sink, type SinkContext } from '../types.js';
import { batchParts } from './serialize.js';
import { checkPipelineDirName, checkSinkOwner, ChunkFileWriter, discardUnrecorded, makeDir, publishChunkFiles, runDirs, sinkFailure } from './chunk.js';

export const spec: ComponentSpec = {
  kind: 'sink',
  type: 'jsonl',
  summary: 'Chunk files of JSON lines in a directory, committed exactly once with the positions they cover.',
  options: {
    dir: { type: 'string', required: true, example: './out/cloudtrail', description: 'Output directory (created if missing).' },
    maxRows: { type: 'integer', default: 100_000, min: 1, description: 'Rotate the chunk after this many rows.' },
    maxBytes: { type: 'size', default: 64 * 1024 * 1024, min: 1, example: '64MiB', description: 'Rotate the chunk after this many uncompressed bytes.' },
    flushInterval: { type: 'duration', default: 1000, min: 10, example: '1s', description: 'Commit what is written at least this often.' },
    gzip: { type: 'boolean', default: false, description: 'Write `.jsonl.gz` chunks.' },
    partition: { type: 'enum', values: ['none', 'day', 'hour'], default: 'none', description: 'Directory partitions by `_time`: `dt=YYYY-MM-DD/` (day) or `dt=YYYY-MM-DD/hour=HH/` (hour).' },
  },
  ping: (o) => pingWritable(o.dir as string, 'PIPE_SINK_FAILED'),
};

export interface JsonlSinkOptions {
  dir: string;
  maxRows: number;
  maxBytes: number;
  flushInterval: number;
  gzip: boolean;
  partition: 'none' | 'day' | 'hour';
}

const ERRORS_PARTITION = '_errors';

export class JsonlSink implements Sink {
  #opts: JsonlSinkOptions;
  #ctx: SinkContext | undefined;
  #dir: string;
  #tmpDir = '';
  #seq = 0;
  #writers = new Map<string, ChunkFileWriter>();
  #batches: Batch[] = [];
  #rows = 0;
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Serializes writes, timed flushes and the final flush. */
  #queue: Promise<void> = Promise.resolve();
  #failure: Error | undefined;

  constructor(opts: JsonlSinkOptions) {
    this.#opts = opts;
    this.#dir = resolve(opts.dir);
  }

  async open(ctx: SinkContext): Promise<void> {
    this.#ctx = ctx;
    checkPipelineDirName(ctx.pipeline);
    // Each run writes its temporary files in a directory of its own, so that runs sharing the
    // directory (workers on shared state) never discard each other's.
    const pipelineTmp = join(this.#dir, '.pipe-tmp', ctx.pipeline);
    this.#tmpDir = join(pipelineTmp, ctx.runId);
    // File system failures (a read-only or full disk) name the sink; a PipeError passes as it is.
    const fs = <T>(op: Promise<T>): Promise<T> => op.catch((err: unknown) => { throw sinkFailure('jsonl', this.#dir, err); });
    await fs(makeDir(this.#tmpDir));
    await fs(checkSinkOwner(join(this.#dir, '.pipe-tmp', `${ctx.pipeline}.owner.json`), ctx.pipeline, ctx.store.id, ctx.store.location, ctx.acceptNewState === true));
    // Run directories first, live runs second, pending chunks third. A listed directory whose run is
    // not live then belongs to a run that is gone (not one registering now), and a run not live
    // can commit nothing later, so every chunk it recorded is in `pending` before its files go.
    const listed = await runDirs(pipelineTmp);
    const live = await ctx.store.liveRuns(ctx.pipeline);
    live.add(ctx.runId);
    const pending = await ctx.store.pendingChunks(ctx.pipeline);
    const missing = await fs(publishChunkFiles(pending));
    for (const m of missing) ctx.log.warn(`committed chunk ${m} is missing from the sink directory`);
    await ctx.store.finishChunks(ctx.pipeline, pending);
    const removed = await fs(discardUnrecorded(pipelineTmp, listed, live));
    if (pending.length || removed) {
      ctx.log.info(`recovered sink: ${pending.length} committed chunk(s) rolled forward, ${removed} uncommitted file(s) discarded`);
    }
    this.#timer = setInterval(() => {
      if (this.#batches.length) this.#serial(() => this.#commit()).catch(() => undefined);
    }, this.#opts.flushInterval);
    this.#timer.unref();
  }

  get serializer(): RowSerializer {
    return { format: 'jsonl', partition: this.#opts.partition };
  }

  write(batch: Batch): Promise<void> {
    return this.#serial(async () => {
      const { parts, rowErrors, errorsText } = batchParts(batch, this.#opts.partition);
      for (const p of parts) await this.#append(p.partition, p.text, p.rows, p.release);
      if (errorsText) await this.#append(ERRORS_PARTITION, errorsText, 0);
      // Keep only what the commit needs: the rows are in the chunk files now.
      this.#batches.push({ ...batch, rows: [], serialized: undefined, rowCount: batchRows(batch), rowErrors });
      if (this.#rows >= this.#opts.maxRows || this.#bytes >= this.#opts.maxBytes) await this.#commit();
    });
  }

  flush(): Promise<void> {
    return this.#serial(() => this.#commit());
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#queue.catch(() => undefined);
    for (const w of this.#writers.values()) await w.discard();
    this.#writers.clear();
  }

  #serial(task: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(() => {
      if (this.#failure) throw this.#failure;
      return task();
    });
    this.#queue = next.catch((err: Error) => {
      this.#failure ??= err;
    });
    return next;
  }

  async #append(partition: string, text: string | Uint8Array, rows: number, release?: () => void): Promise<void> {
    let w = this.#writers.get(partition);
    if (!w) {
      const name = `${this.#ctx!.runId}-${String(this.#seq).padStart(6, '0')}.jsonl${this.#opts.gzip ? '.gz' : ''}`;
      const tmpName = `${partition.replace(/[/=]/g, '_')}${partition ? '-' : ''}${name}.tmp`;
      w = new ChunkFileWriter(join(this.#tmpDir, tmpName), join(this.#dir, partition, name), this.#opts.gzip);
      this.#writers.set(partition, w);
    }
    this.#rows += rows;
    if (rows) this.#bytes += typeof text === 'string' ? text.length : text.byteLength;
    if (w.append(text, rows, release)) await w.writeOut();
  }

  async #commit(): Promise<void> {
    if (this.#batches.length === 0 && this.#writers.size === 0) return;
    const ctx = this.#ctx!;
    const writers = [...this.#writers.values()];
    const batches = this.#batches;
    let files;
    try {
      files = [];
      for (const w of writers) files.push(await w.seal());
    } catch (err) {
      throw sinkFailure('jsonl', this.#dir, err);
    }
    failpoint('sink:before-commit');
    await ctx.commit(files, batches);
    failpoint('sink:after-commit');
    this.#writers.clear();
    this.#batches = [];
    this.#rows = 0;
    this.#bytes = 0;
    if (files.length) this.#seq++;
    // Committed already: a failed rename is finished by the next run's recovery.
    const missing = await publishChunkFiles(files).catch((err: unknown) => { throw sinkFailure('jsonl', this.#dir, err); });
    if (missing.length) throw new PipeError('PIPE_SINK_FAILED', `jsonl sink ${this.#dir}: committed chunk ${missing[0]} vanished before it was renamed (its temporary file was deleted by something else)`);
    failpoint('sink:after-rename');
    await ctx.store.finishChunks(ctx.pipeline, files);
  }
}

export function create(options: Record<string, unknown>): Sink {
  return new JsonlSink(options as unknown as JsonlSinkOptions);
}
