/**
 * Collecting one artifact: raw bytes → loader stages → mapper chain → batches. Records are counted
 * from 0 in the order the loader yields them; a batch carries the count reached, so the sink can
 * commit "this artifact is consumed up to record N" with the rows of those records. A resumed
 * artifact is read again from the start and its first N records are skipped (mappers still see
 * them through `skip`, so a VPC header line is not lost).
 */
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PipeError, toPipeError } from '../errors.js';
import { positionId } from '../rows.js';
import {
  RecordBatch, RowError, RowSkip,
  type Artifact, type ArtifactMapper, type ArtifactRef, type Batch, type Loader, type Mapper, type RecordContext, type Row, type StreamStage,
} from '../types.js';

export interface CollectPlan {
  /** Applied before the loaders unless the pipeline lists an explicit decompressor. */
  decompress: (() => StreamStage) | undefined;
  loaders: Loader[];
  mappers: Mapper[];
  /** Whether the engine turns records into rows before the first mapper. */
  baseRows: boolean;
  batchSize: number;
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

export class BatchBuilder {
  batch: Batch;
  constructor(readonly artifact: ArtifactRef) {
    this.batch = BatchBuilder.empty(artifact);
  }
  static empty(artifact: ArtifactRef): Batch {
    return { artifact, rows: [], rowErrors: [], position: 0, bytes: 0, skipped: 0, filtered: 0 };
  }
  take(position: number, bytes: number): Batch {
    const b = this.batch;
    b.position = position;
    b.bytes = bytes;
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
    out.batch.rows.push(value as Row);
  } else {
    emit(chain, i + 1, chain[i]!.map(value, ctx), ctx, out);
  }
}

class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/**
 * Reads one artifact to its end (or until `signal` aborts) and pushes its batches. The last batch
 * pushed is marked `done`, `failed` (with the position reached), or neither when interrupted.
 */
export async function collectArtifact(
  artifact: Artifact, resumeFrom: number, plan: CollectPlan,
  push: (batch: Batch) => Promise<void>, signal: AbortSignal,
): Promise<void> {
  let raw: Readable;
  try {
    raw = await artifact.open({ signal });
  } catch (err) {
    await push(openFailure(artifact, err, signal));
    return;
  }
  await decodeArtifact(artifact, raw, resumeFrom, plan, push, signal);
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
 * main thread or inside a worker (src/engine/worker.ts) alike.
 */
export async function decodeArtifact(
  artifact: ArtifactRef, raw: Readable, resumeFrom: number, plan: CollectPlan,
  push: (batch: Batch) => Promise<void>, signal: AbortSignal,
): Promise<void> {
  const chain = mapperChain(plan, artifact);
  const first = chain[0];
  const out = new BatchBuilder(artifact);
  const counter = new ByteCounter();
  let seq = 0;
  const ctx: RecordContext = {
    artifact, seq: 0,
    remember(namespace, key, expiresAt) {
      (out.batch.remember ??= []).push({ namespace, key, expiresAt });
    },
  };
  /** Maps one record; true when the batch is full and must be pushed. */
  const step = (record: unknown): boolean => {
    ctx.seq = seq;
    if (seq < resumeFrom) first?.skip?.(record, ctx);
    else emit(chain, 0, record, ctx, out);
    seq++;
    const b = out.batch;
    return b.rows.length + b.rowErrors.length + b.filtered + b.skipped >= plan.batchSize;
  };
  const consume = async (records: AsyncIterable<unknown>): Promise<void> => {
    for await (const item of records) {
      if (item instanceof RecordBatch) {
        for (const record of item.records) if (step(record)) await push(out.take(seq, counter.bytes));
      } else if (step(item)) {
        await push(out.take(seq, counter.bytes));
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
    if (plan.decompress) stages.push(plan.decompress());
    for (const l of plan.loaders) stages.push(l.stage(artifact));
    const watched = stages.map((s) => watchStage(s, note));
    try {
      await (pipeline as unknown as (...s: unknown[]) => Promise<void>)(raw, counter, ...watched, consume, { signal });
    } catch (err) {
      if (signal.aborted) throw err;
      throw toPipeError(stageFailure ?? err, 'PIPE_ARTIFACT_CORRUPT');
    }
    const last = out.take(seq, counter.bytes);
    last.done = true;
    await push(last);
  } catch (err) {
    const last = out.take(seq, counter.bytes);
    if (!signal.aborted) {
      const failure = toPipeError(err, 'PIPE_ARTIFACT_UNREADABLE');
      failure.position = { row: seq, ...failure.position, ...(failure.position?.byte === undefined ? { byte: counter.bytes } : {}) };
      last.failed = failure;
    }
    await push(last);
  }
}
