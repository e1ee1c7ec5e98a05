/**
 * The contracts between the stages of a pipeline: source → loader(s) → mapper chain → sink.
 * Sources name artifacts (a file, an S3 object) and open them as byte streams; loaders turn bytes
 * into records; mappers turn records into rows; the engine packs rows into batches that carry the
 * positions they cover, and the sink commits rows and positions together.
 */
import type { Readable } from 'node:stream';
import type { PipeError, Position } from './errors.js';
import type { ArtifactState, StateStore } from './state/store.js';

/** A row as written to the sink: the record's own fields plus `_id`, `_time`, `_source`. */
export type Row = Record<string, unknown>;

/** What identifies one artifact and where it came from. */
export interface ArtifactRef {
  /** Unique and stable for one version of the artifact (path+size+mtime+fingerprint, bucket+key+etag). */
  identity: string;
  /** `_source` of its rows: `file:///abs/path`, `s3://bucket/key`. */
  uri: string;
  size?: number;
  /** When the artifact was last modified, if known. */
  mtime?: Date;
}

export interface OpenOptions {
  signal: AbortSignal;
  /**
   * Start at this byte of the raw artifact instead of 0 (a run resuming past committed records).
   * Given only to an artifact that says it is `seekable`; the stream then begins exactly there.
   */
  start?: number;
}

/** An artifact a source found: a reference plus a way to read its raw bytes. */
export interface Artifact extends ArtifactRef {
  open(options: OpenOptions): Promise<Readable>;
  /** `open` honours `OpenOptions.start` (a ranged GET, a read stream's `start`). */
  seekable?: boolean;
  /**
   * Told once what became of the artifact after it was handed to the engine, so a source can
   * acknowledge it (delete an SQS message once every object it names is settled):
   * - `done`: committed to its end (or found already done, or skipped as vanished);
   * - `failed`: failed for good and recorded (or found failed before and not retried);
   * - `elsewhere`: another worker holds its claim (shared state): not this run's to acknowledge;
   * - `stopped`: the run stopped (or crashed out) before the artifact was finished.
   */
  settle?(outcome: ArtifactOutcome): void;
}

export type ArtifactOutcome = 'done' | 'failed' | 'elsewhere' | 'stopped';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What every component factory is given besides its options. */
export interface ComponentContext {
  pipeline: string;
  store: StateStore;
  log: Logger;
  /** Directory of the pipeline file, for resolving relative paths. */
  baseDir: string;
}

/** Narrowing of what to collect, from the CLI (`backfill --prefix/--from/--to`). */
export interface SourceScope {
  prefix?: string;
  from?: Date;
  to?: Date;
}

export interface ListContext {
  signal: AbortSignal;
  scope: SourceScope;
  /** `--once`: a single pass even for a source that polls. */
  once: boolean;
  /** `--retry-failed`: failed artifacts are collected again, so a source must list them again. */
  retryFailed?: boolean;
  /** The position stored for one of this pipeline's streams (a listing mark, a cursor). */
  position(stream: string): Promise<unknown>;
  /**
   * Stores a position derived from what is already committed (an S3 listing mark below which every
   * key is done). Not for cursors of rows: those commit with the rows, through StreamChunk.cursor.
   * `undefined` removes the stream's position.
   */
  savePosition(stream: string, value: unknown): Promise<void>;
  /** The streams with a stored position whose name starts with `prefix` (absent: none are known). */
  positionStreams?(prefix: string): Promise<string[]>;
  /** State of an artifact of this pipeline, by identity. */
  artifactState(identity: string): Promise<ArtifactState | undefined>;
  /**
   * Records something found that cannot be collected (an unparseable queue message) as skipped,
   * with its reason: `pipe status` lists it and the run's summary counts it.
   */
  recordSkipped(ref: ArtifactRef, reason: string): Promise<void>;
  log: Logger;
}

/** A source that finds artifacts (files, S3 objects). */
export interface ArtifactSource {
  kind: 'artifacts';
  list(ctx: ListContext): AsyncIterable<Artifact>;
}

/**
 * A piece of an unbounded stream (a page of CloudWatch events, lines appended to a tailed file):
 * records already decoded, and the cursor to store once they are committed. Records are numbered
 * from `firstSeq` (stable across restarts: `_id`s derive from it) and mapped like artifact records.
 */
export interface StreamChunk {
  /** Identity and `_source` of the stream these records come from. */
  ref: ArtifactRef;
  records: unknown[];
  firstSeq: number;
  /**
   * Stored in the same transaction as the rows of these records: `positions[stream] = value`.
   * Absent only on a chunk that merely ends its ref (`last`, no records): nothing is committed.
   */
  cursor?: { stream: string; value: unknown };
  /** No more records will come for this ref (a rotated file read to its end): mapper state is dropped. */
  last?: boolean;
  /** Raw bytes these records came from, for progress. */
  bytes?: number;
  /** Keys to persist with these records (event ids seen inside a re-queried window). */
  remember?: Array<{ namespace: string; key: string; expiresAt: number }>;
  /** Row errors about records that are still delivered (a line kept truncated): `index` into `records`. */
  rowErrors?: Array<{ index: number; error: RowError }>;
}

export type ReadContext = ListContext;

/** A source of unbounded streams (CloudWatch log groups, tailed files) that keeps its own cursors. */
export interface StreamSource {
  kind: 'streams';
  read(ctx: ReadContext): AsyncIterable<StreamChunk>;
  /** `--dry-run`: what `read` would read (log streams, files), without reading it. */
  dryRun?(ctx: ReadContext): AsyncIterable<{ uri: string; size?: number; state: string }>;
}

export type Source = ArtifactSource | StreamSource;

/**
 * A loader stage. `bytes` stages transform a byte stream (decompression); `records` stages decode
 * bytes into records (lines, JSON values). Stages follow Node's pipeline contract.
 */
export type StreamStage =
  | NodeJS.ReadWriteStream
  | ((source: AsyncIterable<unknown>, options: { signal: AbortSignal }) => AsyncIterable<unknown>);

export interface Loader {
  output: 'bytes' | 'records';
  /**
   * `rawKeys`: the mapper after this loader takes records unparsed (Mapper.rawKeys); a loader that
   * can (json) may then yield RawJsonRecords (src/loaders/json-raw.ts) noting those keys' values.
   */
  stage(artifact: ArtifactRef, rawKeys?: readonly string[]): StreamStage;
}

/** Passed with every record to a mapper. */
export interface RecordContext {
  artifact: ArtifactRef;
  /** 0-based index of the record in the artifact, as produced by the loader. */
  seq: number;
  /** Persist a key with an expiry in the same commit as the rows of this record (dedupe). */
  remember(namespace: string, key: string, expiresAt: number): void;
}

/** A record that is wrong on its own: recorded with its position, the artifact goes on. */
export class RowError {
  constructor(
    readonly code: 'PIPE_ROW_INVALID' | 'PIPE_LINE_TOO_LONG',
    readonly message: string,
    readonly raw?: string,
  ) {}
}

/**
 * Several records yielded at once by a loader (the lines of one chunk): the engine takes them one
 * by one as if yielded singly, without an async step per record.
 */
export class RecordBatch {
  constructor(
    readonly records: unknown[],
    /**
     * Bytes of the loader's input up to the record boundary after the last of `records` (the byte
     * after its newline), when the loader knows it: a reader starting at that byte sees the next
     * record first. Lets a resumed run start mid-artifact instead of at byte 0.
     */
    readonly end?: number,
  ) {}
}

/** A record that is not an event (a CloudTrail digest file): counted, not failed. */
export class RowSkip {
  constructor(readonly reason: string) {}
}

/**
 * `null`/`undefined` drops the record (a filter); an array fans out, and may mix rows with row
 * errors and skips (one bad event in a CloudTrail document does not cost the good ones).
 */
export type MapResult = Row | Array<Row | RowError | RowSkip> | RowError | RowSkip | null | undefined;

/** A mapper bound to one artifact (it may keep per-artifact state such as a VPC header line). */
export interface ArtifactMapper {
  map(value: unknown, ctx: RecordContext): MapResult;
  /**
   * Called instead of `map` for records before a resume point, so headers are still seen. A run
   * that resumes by byte (ResumePoint) calls it with the first record (seq 0, kept in the stored
   * state) and then with the records between that point and the committed position, not with
   * every earlier record.
   */
  skip?(value: unknown, ctx: RecordContext): void;
  /**
   * A fast path, used when this mapper is the last of the chain and rows are serialized where they
   * are mapped: writes the row `map` would return as its JSON line straight into `sink` (exactly
   * `JSON.stringify` of that row, with no row object built) and returns WRITTEN; for anything else
   * (an error, a dropped record, a fan-out) it returns what `map` would.
   */
  write?(value: unknown, ctx: RecordContext, sink: LineSink): MapResult | typeof WRITTEN;
}

/** What `ArtifactMapper.write` returns when it wrote the row itself. */
export const WRITTEN: unique symbol = Symbol('written');

/** Takes rows already written as JSON (see ArtifactMapper.write). */
export interface LineSink {
  /** One row's JSON line (without the newline) and the row's `_time`, which picks its partition. */
  line(json: string, time: string): void;
  /** One row's JSON line given as `bytes[start, end)` (UTF-8) followed by `tail`. */
  copy(bytes: Uint8Array, start: number, end: number, tail: string, time: string): void;
}

export interface Mapper {
  forArtifact(artifact: ArtifactRef): ArtifactMapper;
  /**
   * Set when this mapper's `write` takes RawJsonRecords (a record's own bytes, unparsed): the
   * top-level keys whose values it reads. Used when it is the only mapper and rows are written
   * where they are mapped; its `map` must then take RawJsonRecords too.
   */
  rawKeys?: readonly string[];
}

export interface RowErrorRecord {
  artifact: string;
  uri: string;
  position: Position;
  code: string;
  message: string;
  raw?: string;
}

/**
 * What flows into the sink. A batch carries rows and the position they bring their artifact to,
 * so the sink can commit both in one transaction.
 */
export interface Batch {
  artifact: ArtifactRef;
  rows: Row[];
  /** Set when `rows` were released (written by the sink, or serialized by a worker): how many there were. */
  rowCount?: number;
  /** The rows already turned into JSON lines per partition (by a worker), instead of `rows`. */
  serialized?: SerializedPart[];
  rowErrors: RowErrorRecord[];
  /** Records of the artifact consumed once this batch is committed. */
  position: number;
  /**
   * A safe place to resume reading from, at or before `position`, committed with it (stores keep it
   * in the artifact's row: ArtifactState.resumeAt). Set only where raw bytes map to records.
   */
  resumeAt?: ResumePoint;
  /** Bytes of the raw artifact read so far. */
  bytes: number;
  /** Counts for the summary. */
  skipped: number;
  filtered: number;
  done?: boolean;
  failed?: PipeError;
  /** The artifact vanished before it could be read (deleted or replaced since listed): recorded as skipped with this reason. */
  vanished?: PipeError;
  remember?: Array<{ namespace: string; key: string; expiresAt: number }>;
  /** Stream pointers (CloudWatch time pointer, tail offsets) committed with this batch. */
  streams?: Record<string, unknown>;
}

/**
 * Where a resumed run may open an artifact instead of at byte 0: byte `byte` of the raw artifact
 * begins a record, and `record` records come before it. Only recorded for encodings whose raw bytes
 * map to records (uncompressed `lines`/`jsonl`); a gzip artifact is re-read and its records skipped.
 * `head` is the artifact's first record (a VPC flow header line), kept when the first mapper has a
 * `skip` so that it still sees the header when the run resumes past it.
 */
export interface ResumePoint {
  byte: number;
  record: number;
  head?: string;
}

/** JSON lines of one partition (`dt=2024-03-01`, or '' without partitions), each ending in a newline. */
export interface SerializedPart {
  partition: string;
  /** UTF-8 bytes when serialized by a worker (moved across threads without a copy), else text. */
  text: string | Uint8Array;
  rows: number;
  /**
   * Called once the sink has written `text` out and holds it no more: a worker's buffer then goes
   * back to that worker for its next batch, so steady work allocates no new ones.
   */
  release?: () => void;
}

/** How a sink turns rows into text, declared so worker threads can do it off the main thread. */
export interface RowSerializer {
  format: 'jsonl';
  partition: 'none' | 'day' | 'hour';
}

/** Rows a batch brings to the sink, whether or not the sink still holds them. */
export function batchRows(b: Batch): number {
  return b.rowCount ?? b.rows.length;
}

/** The sink's part of the commit protocol; the engine supplies it. */
export interface CommitFiles {
  /** Files written under temporary names, renamed to their final names after the commit. */
  files: Array<{ tmp: string; final: string; rows: number; bytes: number }>;
}

export interface SinkContext extends ComponentContext {
  runId: string;
  /** Records the covered batches and the files in one transaction; throws if the lock is lost. */
  commit(files: CommitFiles['files'], batches: Batch[]): Promise<void>;
  signal: AbortSignal;
  /** The user said the state file is new on purpose (`--accept-new-state`). */
  acceptNewState?: boolean;
}

export interface Sink {
  /** Present when the sink writes JSON lines and accepts batches serialized by workers. */
  readonly serializer?: RowSerializer;
  /** Recovery of an earlier run's chunks, then ready to write. */
  open(ctx: SinkContext): Promise<void>;
  write(batch: Batch): Promise<void>;
  /** Commit everything written so far. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
