/**
 * Collecting one artifact: raw bytes → loader stages → mapper chain → batches. Records are counted
 * from 0 in the order the loader yields them; a batch carries the count reached, so the sink can
 * commit "this artifact is consumed up to record N" with the rows of those records.
 *
 * Resuming a half-read artifact: where raw bytes map to records (one `lines` or `jsonl` loader on
 * uncompressed bytes), each batch also carries a ResumePoint, the last line boundary the loader
 * reported at or before its position (byte offset, records before it, and the first record when the
 * first mapper has a `skip`, so a VPC header line is not lost). Such batches end where the loader's
 * batches end, so the point is normally the position itself (only an interrupted run's last batch
 * ends between boundaries). A resumed run of a `seekable` artifact opens it at that byte (a ranged
 * GET, a read stream's `start`), passes the stored first record and then the records between that
 * point and the committed position (normally none) through `skip`, and maps the rest. Anything else
 * (gzip, json, no stored point) is read again from byte 0 and its first N records are skipped.
 */
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PipeError, toPipeError } from '../errors.js';
import { detectCompression, SNIFF_BYTES } from '../loaders/decompress.js';
import { positionId } from '../rows.js';
import {
  RecordBatch, RowError, RowSkip, WRITTEN,
  type Artifact, type ArtifactMapper, type ArtifactRef, type Batch, type Loader, type Mapper, type RecordContext, type ResumePoint,
  type LineSink, type Row, type RowErrorRecord, type SerializedPart, type StreamStage,
} from '../types.js';

export interface CollectPlan {
  /** Applied before the loaders unless the pipeline lists an explicit decompressor. */
  decompress: (() => StreamStage) | undefined;
  loaders: Loader[];
  mappers: Mapper[];
  /** Whether the engine turns records into rows before the first mapper. */
  baseRows: boolean;
  batchSize: number;
  /**
   * Serializes rows the moment they are mapped (a worker thread's RowWriter): batches then carry
   * JSON lines (`serialized`, `rowCount`) instead of row objects. Without it, batches carry rows.
   */
  rowWriter?: () => RowWriting;
}

/** Rows in, JSON lines per partition out (src/sinks/serialize.ts RowWriter). */
export interface RowWriting extends LineSink {
  /** Bytes written since the last take. */
  readonly bytes: number;
  add(row: Row): RowErrorRecord | undefined;
  take(): SerializedPart[];
}

/** Turns a raw record into a row when no format mapper does: a line becomes `{ message }`. */
export function baseRow(value: unknown, artifact: ArtifactRef, seq: number): Row {
  const row: Row = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Row) : { message: value };
  row._id ??= positionId(artifact.identity, seq);
  row._time ??= new Date().toISOString();
  row._source ??= artifact.uri;
  return row;
}

/** The mapper chain bound to one artifact or stream, with the base-row step when it needs one. */
export function mapperChain(plan: Pick<CollectPlan, 'mappers' | 'baseRows'>, ref: ArtifactRef): ArtifactMapper[] {
  const chain = plan.mappers.map((m) => m.forArtifact(ref));
  if (plan.baseRows) chain.unshift({ map: (v, ctx) => baseRow(v, ref, ctx.seq) });
  return chain;
}

/**
 * Written JSON lines that fill a batch whatever its record count: a batch's lines are held until the
 * sink writes them, so large rows must not make a batch of `batchSize` records arbitrarily large.
 */
export const BATCH_MAX_BYTES = 2 * 1024 * 1024;

export class BatchBuilder implements LineSink {
  batch: Batch;
  /** Rows given to the writer since the last take. */
  #written = 0;
  constructor(readonly artifact: ArtifactRef, readonly writer?: RowWriting) {
    this.batch = BatchBuilder.empty(artifact);
  }
  static empty(artifact: ArtifactRef): Batch {
    return { artifact, rows: [], rowErrors: [], position: 0, bytes: 0, skipped: 0, filtered: 0 };
  }
  /** Records the current batch accounts for: rows, row errors, filtered and skipped. */
  get size(): number {
    const b = this.batch;
    return b.rows.length + this.#written + b.rowErrors.length + b.filtered + b.skipped;
  }
  /** Whether the batch is full: `records` records, or BATCH_MAX_BYTES of JSON lines written. */
  full(records: number): boolean {
    return this.size >= records || (this.writer !== undefined && this.writer.bytes >= BATCH_MAX_BYTES);
  }
  row(row: Row, seq: number): void {
    if (!this.writer) {
      this.batch.rows.push(row);
      return;
    }
    const e = this.writer.add(row);
    if (!e) this.#written++;
    else this.batch.rowErrors.push({ ...e, artifact: this.artifact.identity, position: { row: seq + 1 } });
  }
  /** A row its mapper wrote as JSON (only called when there is a writer: see `emit`). */
  line(json: string, time: string): void {
    this.writer!.line(json, time);
    this.#written++;
  }
  copy(bytes: Uint8Array, start: number, end: number, tail: string, time: string): void {
    this.writer!.copy(bytes, start, end, tail, time);
    this.#written++;
  }
  take(position: number, bytes: number): Batch {
    const b = this.batch;
    b.position = position;
    b.bytes = bytes;
    if (this.writer) {
      b.serialized = this.writer.take();
      b.rowCount = this.#written;
      this.#written = 0;
    }
    this.batch = BatchBuilder.empty(this.artifact);
    return b;
  }
  error(e: RowError, seq: number): void {
    this.batch.rowErrors.push({
      artifact: this.artifact.identity, uri: this.artifact.uri, position: { row: seq + 1 },
      code: e.code, message: e.message, ...(e.raw !== undefined ? { raw: e.raw } : {}),
    });
  }
}

export function emit(chain: ArtifactMapper[], i: number, value: unknown, ctx: RecordContext, out: BatchBuilder): void {
  if (value === null || value === undefined) {
    out.batch.filtered++;
  } else if (value instanceof RowError) {
    out.error(value, ctx.seq);
  } else if (value instanceof RowSkip) {
    out.batch.skipped++;
  } else if (Array.isArray(value) && i > 0) {
    for (const v of value) emit(chain, i, v, ctx, out);
  } else if (i === chain.length) {
    out.row(value as Row, ctx.seq);
  } else {
    const m = chain[i]!;
    if (m.write !== undefined && out.writer !== undefined && i === chain.length - 1) {
      const r = m.write(value, ctx, out);
      if (r !== WRITTEN) emit(chain, i + 1, r, ctx, out);
    } else {
      emit(chain, i + 1, m.map(value, ctx), ctx, out);
    }
  }
}

class ByteCounter extends Transform {
  bytes = 0;
  /** The first bytes seen, to tell whether they were compressed (autoDecompress looks at as many). */
  head = Buffer.alloc(0);
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    if (this.head.length < SNIFF_BYTES) this.head = Buffer.concat([this.head, chunk.subarray(0, SNIFF_BYTES - this.head.length)]);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/** Where a resumed artifact stands: its committed position, and the stored point to open it at. */
export interface ArtifactResume {
  position: number;
  resumeAt?: ResumePoint;
}

/** A first record longer than this is not kept in the state: such an artifact resumes from byte 0. */
const HEAD_MAX_CHARS = 4096;

/** Whether the first mapper wants to see the records before a resume point (a VPC header). */
function firstMapperSkips(plan: CollectPlan, ref: ArtifactRef): boolean {
  return !plan.baseRows && plan.mappers[0]?.forArtifact(ref).skip !== undefined;
}

/**
 * The stored point to open a resumed artifact at, when it can be used: the source can start
 * mid-way, the loader reads raw bytes (one records loader, nothing in between), and the point is
 * within the committed position and carries the first record if the first mapper needs it.
 */
export function resumePoint(artifact: Artifact, from: number | ArtifactResume, plan: CollectPlan): ResumePoint | undefined {
  if (typeof from === 'number' || !artifact.seekable) return undefined;
  const at = from.resumeAt;
  if (!at || at.byte <= 0 || at.record > from.position || plan.loaders.length !== 1) return undefined;
  if (at.head === undefined && at.record > 0 && firstMapperSkips(plan, artifact)) return undefined;
  return at;
}

/** Opens an artifact where its resumption can start: at a stored point's byte, else at byte 0. */
export async function openArtifact(
  artifact: Artifact, from: number | ArtifactResume, plan: CollectPlan, signal: AbortSignal,
): Promise<{ raw: Readable; at: ResumePoint | undefined }> {
  const at = resumePoint(artifact, from, plan);
  return { raw: await artifact.open(at ? { signal, start: at.byte } : { signal }), at };
}

/**
 * Reads one artifact to its end (or until `signal` aborts) and pushes its batches. The last batch
 * pushed is marked `done`, `failed` (with the position reached), or neither when interrupted.
 * `from` is the committed position (records to skip), with the stored resume point if any.
 */
export async function collectArtifact(
  artifact: Artifact, from: number | ArtifactResume, plan: CollectPlan,
  push: (batch: Batch) => Promise<void>, signal: AbortSignal,
): Promise<void> {
  let opened;
  try {
    opened = await openArtifact(artifact, from, plan, signal);
  } catch (err) {
    await push(openFailure(artifact, err, signal));
    return;
  }
  await decodeArtifact(artifact, opened.raw, typeof from === 'number' ? from : from.position, plan, push, signal, opened.at);
}

/** The batch that ends an artifact which could not even be opened (or whose open was interrupted). */
export function openFailure(artifact: ArtifactRef, err: unknown, signal: AbortSignal): Batch {
  const last = BatchBuilder.empty(artifact);
  if (!signal.aborted) {
    const failure = toPipeError(err, 'PIPE_ARTIFACT_UNREADABLE');
    failure.position = { row: 0, byte: 0, ...failure.position };
    // Gone between listing and reading (deleted, or replaced by a version with a new identity):
    // nothing is wrong with it, so it is skipped with the reason rather than failed.
    if (failure.code === 'PIPE_ARTIFACT_NOT_FOUND') last.vanished = failure;
    else last.failed = failure;
  }
  return last;
}

/** A stage whose PipeErrors are also handed to `note`. */
function watchStage(stage: StreamStage, note: (e: unknown) => void): StreamStage {
  if (typeof stage !== 'function') {
    (stage as NodeJS.EventEmitter).on('error', note);
    return stage;
  }
  return async function* watched(source: AsyncIterable<unknown>, options: { signal: AbortSignal }) {
    try {
      yield* stage(source, options);
    } catch (err) {
      note(err);
      throw err;
    }
  };
}

/**
 * Decodes an opened artifact: raw bytes → loaders → mapper chain → batches, ending with a batch
 * marked `done`, `failed` (with the position reached), or neither when interrupted. Runs on the
 * main thread or inside a worker (src/engine/worker.ts) alike. `at`: `raw` begins at that stored
 * point (see the top of the file) rather than at byte 0.
 */
export async function decodeArtifact(
  artifact: ArtifactRef, raw: Readable, resumeFrom: number, plan: CollectPlan,
  push: (batch: Batch) => Promise<void>, signal: AbortSignal, at?: ResumePoint,
): Promise<void> {
  const chain = mapperChain(plan, artifact);
  const first = chain[0];
  const out = new BatchBuilder(artifact, plan.rowWriter?.());
  const counter = new ByteCounter();
  const base = at?.byte ?? 0;
  let seq = at?.record ?? 0;
  const ctx: RecordContext = {
    artifact, seq: 0,
    remember(namespace, key, expiresAt) {
      (out.batch.remember ??= []).push({ namespace, key, expiresAt });
    },
  };
  // The first record, kept with each resume point when the first mapper has a `skip` to show it to.
  const wantHead = first?.skip !== undefined;
  let head = at && at.record > 0 ? at.head : undefined;
  let headKept = !wantHead || head !== undefined;
  if (head !== undefined) first!.skip!(head, ctx);
  /** Whether loader byte offsets are raw byte offsets: known once the first bytes were seen. */
  let plain: boolean | undefined;
  const isPlain = (): boolean => plan.loaders.length === 1 && (at !== undefined || !plan.decompress || detectCompression(counter.head) === null);
  let safe: ResumePoint | undefined;
  const take = (): Batch => {
    const b = out.take(seq, counter.bytes);
    if (safe) b.resumeAt = safe;
    return b;
  };
  /** Maps one record; true when the batch is full and must be pushed. */
  const step = (record: unknown): boolean => {
    ctx.seq = seq;
    if (seq === 0 && wantHead) {
      headKept = typeof record === 'string' && record.length <= HEAD_MAX_CHARS;
      if (headKept) head = record as string;
    }
    if (seq < resumeFrom) first?.skip?.(record, ctx);
    else emit(chain, 0, record, ctx, out);
    seq++;
    return out.full(plan.batchSize);
  };
  const consume = async (records: AsyncIterable<unknown>): Promise<void> => {
    for await (const item of records) {
      if (!(item instanceof RecordBatch)) {
        if (step(item)) await push(take());
      } else if (item.end === undefined || !(plain ??= isPlain())) {
        for (const record of item.records) if (step(record)) await push(take());
      } else {
        // A batch full mid-way waits for the end of the loader's batch, so that it ends on the line
        // boundary the loader reported: committed positions are then resume points themselves.
        let full = false;
        for (const record of item.records) full = step(record) || full;
        if (headKept) safe = head !== undefined && seq > 0 ? { byte: base + item.end, record: seq, head } : { byte: base + item.end, record: seq };
        if (full) await push(take());
      }
    }
  };
  try {
    // When a stage fails, the others are torn down and may report an AbortError or a premature
    // close first; the failure recorded is the stage's own, which names the problem and its byte.
    let stageFailure: PipeError | undefined;
    const note = (e: unknown): void => {
      if (e instanceof PipeError) stageFailure ??= e;
    };
    const stages: StreamStage[] = [];
    // A stored point was only recorded for uncompressed bytes: there is nothing to detect.
    if (plan.decompress && !at) stages.push(plan.decompress());
    // The only mapper may take its records unparsed (Mapper.rawKeys) when it writes the rows.
    const rawKeys = out.writer && !plan.baseRows && plan.mappers.length === 1 ? plan.mappers[0]!.rawKeys : undefined;
    plan.loaders.forEach((l, k) => stages.push(l.stage(artifact, k === plan.loaders.length - 1 ? rawKeys : undefined)));
    const watched = stages.map((s) => watchStage(s, note));
    try {
      await (pipeline as unknown as (...s: unknown[]) => Promise<void>)(raw, counter, ...watched, consume, { signal });
    } catch (err) {
      if (signal.aborted) throw err;
      throw toPipeError(stageFailure ?? err, 'PIPE_ARTIFACT_CORRUPT');
    }
    const last = take();
    last.done = true;
    await push(last);
  } catch (err) {
    const last = take();
    if (!signal.aborted) {
      const failure = toPipeError(err, 'PIPE_ARTIFACT_UNREADABLE');
      failure.position = { row: seq, ...failure.position, ...(failure.position?.byte === undefined ? { byte: base + counter.bytes } : {}) };
      last.failed = failure;
    }
    await push(last);
  }
}
