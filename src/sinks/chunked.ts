/**
 * What the jsonl and s3 sinks share. Rows are appended to one chunk file per partition (and one
 * for row errors, `_errors`), named `<run id>-<sequence>.jsonl[.gz]`. A chunk is committed when it
 * reaches maxRows or maxBytes, every flushInterval, and at the end; writes, timed flushes and the
 * final flush run one at a time, and after a failure every later one fails with it.
 *
 * A commit: the sink stages the chunk's files (sealed; uploaded, for s3), ONE state transaction
 * records them with the positions of every batch they hold, then the sink publishes them under
 * their final names and the record is closed. A sink says how it recovers on open, where a chunk's
 * files go, how they are staged, and how they are published.
 */
import { failpoint } from '../failpoint.js';
import type { ChunkFile } from '../state/store.js';
import { batchRows, type Batch, type RowSerializer, type Sink, type SinkContext } from '../types.js';
import type { ChunkFileWriter } from './chunk.js';
import { batchParts } from './serialize.js';

export interface ChunkedSinkOptions {
  maxRows: number;
  maxBytes: number;
  flushInterval: number;
  gzip: boolean;
  partition: 'none' | 'day' | 'hour';
}

/** The partition row errors are written to, in the same chunk as the rows. */
const ERRORS_PARTITION = '_errors';

export abstract class ChunkedSink<C extends { writer: ChunkFileWriter }> implements Sink {
  protected readonly chunkOptions: ChunkedSinkOptions;
  #ctx: SinkContext | undefined;
  #seq = 0;
  /** The open chunk's files, by partition. */
  #files = new Map<string, C>();
  #batches: Batch[] = [];
  #rows = 0;
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Serializes writes, timed flushes and the final flush. */
  #queue: Promise<void> = Promise.resolve();
  #failure: Error | undefined;

  constructor(options: ChunkedSinkOptions) {
    this.chunkOptions = options;
  }

  /** Chunks recorded by earlier runs rolled forward, files no commit recorded discarded. */
  protected abstract recover(ctx: SinkContext): Promise<void>;
  /** A new file of the open chunk, for `partition`, to be published as `name`. */
  protected abstract openFile(ctx: SinkContext, partition: string, name: string): C;
  /** The open chunk's files made ready to commit (sealed, uploaded): what the state records. */
  protected abstract stage(files: C[], ctx: SinkContext): Promise<ChunkFile[]>;
  /** Committed files moved to their final names; a file found nowhere fails the run. */
  protected abstract publish(committed: ChunkFile[], files: C[], ctx: SinkContext): Promise<void>;
  /** What is left to clean up once the sink is closed. */
  protected async closed(): Promise<void> {}

  async open(ctx: SinkContext): Promise<void> {
    this.#ctx = ctx;
    await this.recover(ctx);
    this.#timer = setInterval(() => {
      if (this.#batches.length) this.#serial(() => this.#commit()).catch(() => undefined);
    }, this.chunkOptions.flushInterval);
    this.#timer.unref();
  }

  get serializer(): RowSerializer {
    return { format: 'jsonl', partition: this.chunkOptions.partition };
  }

  write(batch: Batch): Promise<void> {
    return this.#serial(async () => {
      const { parts, rowErrors, errorsText } = batchParts(batch, this.chunkOptions.partition);
      for (const p of parts) await this.#append(p.partition, p.text, p.rows, p.release);
      if (errorsText) await this.#append(ERRORS_PARTITION, errorsText, 0);
      // Keep only what the commit needs: the rows are in the chunk files now.
      this.#batches.push({ ...batch, rows: [], serialized: undefined, rowCount: batchRows(batch), rowErrors });
      if (this.#rows >= this.chunkOptions.maxRows || this.#bytes >= this.chunkOptions.maxBytes) await this.#commit();
    });
  }

  flush(): Promise<void> {
    return this.#serial(() => this.#commit());
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#queue.catch(() => undefined);
    for (const f of this.#files.values()) await f.writer.discard();
    this.#files.clear();
    await this.closed();
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
    let f = this.#files.get(partition);
    if (!f) {
      const ctx = this.#ctx!;
      f = this.openFile(ctx, partition, `${ctx.runId}-${String(this.#seq).padStart(6, '0')}.jsonl${this.chunkOptions.gzip ? '.gz' : ''}`);
      this.#files.set(partition, f);
    }
    this.#rows += rows;
    if (rows) this.#bytes += typeof text === 'string' ? text.length : text.byteLength;
    if (f.writer.append(text, rows, release)) await f.writer.writeOut();
  }

  async #commit(): Promise<void> {
    if (this.#batches.length === 0 && this.#files.size === 0) return;
    const ctx = this.#ctx!;
    const files = [...this.#files.values()];
    const batches = this.#batches;
    const staged = await this.stage(files, ctx);
    failpoint('sink:before-commit');
    await ctx.commit(staged, batches);
    failpoint('sink:after-commit');
    this.#files.clear();
    this.#batches = [];
    this.#rows = 0;
    this.#bytes = 0;
    if (staged.length) this.#seq++;
    // Committed already: what publishing leaves undone is finished by the next run's recovery.
    await this.publish(staged, files, ctx);
    failpoint('sink:after-rename');
    await ctx.store.finishChunks(ctx.pipeline, staged);
  }
}

/** The name a partition's file has while its chunk is open: `dt_2024-03-01-<name>`, or `<name>`. */
export function partitionFileName(partition: string, name: string): string {
  return `${partition.replace(/[/=]/g, '_')}${partition ? '-' : ''}${name}`;
}
