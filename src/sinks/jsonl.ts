/**
 * The JSONL sink and its exactly-once commit protocol.
 *
 * Rows are appended to chunk files under `<dir>/.pipe-tmp/<pipeline>/<run id>/`. When a chunk rotates
 * (maxRows, maxBytes, flushInterval, or the end of the run) its files are fsynced, then ONE state
 * transaction records them together with the positions of every batch they hold, and only then are
 * they renamed to `<dir>/[dt=…/]<run id>-<sequence>.jsonl[.gz]`. On start, chunks recorded but not
 * yet renamed are rolled forward and temporary files no commit recorded are deleted, so a kill -9
 * at any instant neither loses nor duplicates a row. Many workers may share the directory (shared
 * state): chunk names carry the run id, a run leaves the temporary files of live runs alone (and of
 * runs that register while it looks), and a chunk rolled forward by another run's recovery is found
 * already in place by its own rename. Row errors go to `<dir>/_errors/` in the same chunk, so the
 * dead-letter files are exactly-once too. Appending, rotation and the commit sequence are
 * ChunkedSink's (chunked.ts).
 */
import { join, resolve } from 'node:path';
import { PipeError } from '../errors.js';
import { pingWritable } from '../ping.js';
import type { ComponentSpec } from '../spec.js';
import type { ChunkFile } from '../state/store.js';
import type { Sink, SinkContext } from '../types.js';
import { checkPipelineDirName, checkSinkOwner, ChunkFileWriter, discardUnrecorded, makeDir, publishChunkFiles, runDirs, sinkFailure } from './chunk.js';
import { ChunkedSink, partitionFileName } from './chunked.js';

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

interface OpenFile {
  writer: ChunkFileWriter;
}

export class JsonlSink extends ChunkedSink<OpenFile> {
  #dir: string;
  #tmpDir = '';

  constructor(opts: JsonlSinkOptions) {
    super(opts);
    this.#dir = resolve(opts.dir);
  }

  protected async recover(ctx: SinkContext): Promise<void> {
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
  }

  protected openFile(_ctx: SinkContext, partition: string, name: string): OpenFile {
    const tmp = join(this.#tmpDir, `${partitionFileName(partition, name)}.tmp`);
    return { writer: new ChunkFileWriter(tmp, join(this.#dir, partition, name), this.chunkOptions.gzip) };
  }

  protected async stage(files: OpenFile[]): Promise<ChunkFile[]> {
    try {
      const sealed = [];
      for (const f of files) sealed.push(await f.writer.seal());
      return sealed;
    } catch (err) {
      throw sinkFailure('jsonl', this.#dir, err);
    }
  }

  protected async publish(committed: ChunkFile[]): Promise<void> {
    const missing = await publishChunkFiles(committed).catch((err: unknown) => { throw sinkFailure('jsonl', this.#dir, err); });
    if (missing.length) throw new PipeError('PIPE_SINK_FAILED', `jsonl sink ${this.#dir}: committed chunk ${missing[0]} vanished before it was renamed (its temporary file was deleted by something else)`);
  }
}

export function create(options: Record<string, unknown>): Sink {
  return new JsonlSink(options as unknown as JsonlSinkOptions);
}
