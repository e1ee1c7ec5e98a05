/**
 * The state store interface, implemented by SQLite (one file, one run per pipeline at a time) and
 * PostgreSQL (shared by many workers of one pipeline). Every method is async for the second.
 *
 * Two modes, told apart by `shared`:
 * - Exclusive (SQLite): `acquireLock` takes the pipeline's lock or throws PIPE_LOCKED; its fencing
 *   token is re-checked by every commit.
 * - Shared (PostgreSQL): `acquireLock` registers a worker and never refuses. Work is claimed
 *   instead: each artifact by `startArtifact`, the S3 listing and the streams of a streams source by
 *   `claimStream`. Every claim has a lease (the lock's `leaseMs`, renewed by `renewLock`) and a
 *   fencing token; `commit` and `setPosition` re-check, in their transaction, that this worker still
 *   holds the claim on everything they advance, so a worker that lost a claim (stalled past its
 *   lease, partitioned away) can never commit. A dead worker's claims return when its lease ends.
 */
import type { Position } from '../errors.js';
import type { ArtifactRef, Batch, ResumePoint, RowErrorRecord } from '../types.js';

export type ArtifactStatus = 'in_progress' | 'done' | 'failed' | 'skipped';

export interface ArtifactState {
  identity: string;
  uri: string;
  status: ArtifactStatus;
  /** Records consumed and committed: a resumed run skips this many. */
  position: number;
  /**
   * Where a resumed run may open the artifact instead of at byte 0 (uncompressed line-based
   * artifacts), committed in the same transaction as `position` from Batch.resumeAt: the latest
   * one given with a position at least the stored one, kept while later batches carry none, and
   * dropped once the artifact is done. Its `record` never exceeds `position`. SQLite keeps it as
   * JSON in the nullable column `artifacts.resume_at` (migration 3).
   */
  resumeAt?: ResumePoint;
  rows: number;
  rowErrors: number;
  attempts: number;
  errorCode?: string;
  errorMessage?: string;
  errorPosition?: Position;
  updatedAt: string;
}

export interface LockOwner {
  pid: number;
  host: string;
  runId: string;
}

export interface Lock {
  pipeline: string;
  owner: LockOwner;
  /** Fencing token: increases every time the lock changes hands. */
  token: number;
  leaseMs: number;
  /**
   * Set when the lock was not released by its last holder but taken from it: its process is gone
   * (same host), or its lease ran out (another host, or a stalled process). A notable event to log.
   */
  takenOverFrom?: { owner: LockOwner; reason: 'dead' | 'lease expired' };
}

export interface ChunkFile {
  tmp: string;
  final: string;
  rows: number;
  bytes: number;
}

export interface RunSummary {
  artifacts: number;
  failed: number;
  rows: number;
  rowErrors: number;
  skipped: number;
  bytes: number;
  exitCode: number;
}

export interface RunRecord extends Partial<RunSummary> {
  runId: string;
  command: string;
  startedAt: string;
  endedAt?: string;
  pid: number;
}

/** A worker of a pipeline sharing a store, as `pipe status` shows it. */
export interface WorkerInfo {
  owner: LockOwner;
  startedAt: string;
  heartbeatAt: string;
  /** When its lease (and every claim it holds) ends unless renewed. */
  expiresAt: string;
  /** What it holds: artifact uris and stream names. */
  claims: string[];
}

/** The stream claim taken by the run that lists an artifact source (only it saves listing marks). */
export const LISTING_STREAM = 'listing';
/** The stream claim taken by the run that reads a streams source (CloudWatch, tail). */
export const STREAMS_STREAM = 'streams';

export interface StatusReport {
  pipeline: string;
  artifacts: { done: number; failed: number; inProgress: number; skipped: number };
  failed: ArtifactState[];
  inProgress: ArtifactState[];
  /** Artifacts found but not collected (vanished, not applicable), with the reason in `errorMessage`. */
  skipped: ArtifactState[];
  positions: Array<{ stream: string; value: unknown; updatedAt: string }>;
  runs: RunRecord[];
  rowErrors: RowErrorRecord[];
  lock?: { owner: LockOwner; expiresAt: string };
  /** Shared stores: the live workers, their claims and heartbeats. */
  workers?: WorkerInfo[];
}

export interface StateStore {
  readonly location: string;
  /** A random id made when the state was created: sinks record it to notice a replaced state file. */
  readonly id: string;
  /** Many runs of one pipeline may work at once (see the top of this file). */
  readonly shared: boolean;
  /** Exclusive: takes the pipeline's lock, or throws PIPE_LOCKED naming the holder. Shared: registers a worker. */
  acquireLock(pipeline: string, owner: LockOwner, leaseMs: number): Promise<Lock>;
  /** Extends the lease (and, shared, every claim held); throws PIPE_LOCK_LOST once it has run out or been taken. */
  renewLock(lock: Lock): Promise<void>;
  /** Releases the lock (shared: the worker's registration and every claim it still holds). */
  releaseLock(lock: Lock): Promise<void>;

  beginRun(pipeline: string, run: RunRecord): Promise<void>;
  endRun(pipeline: string, runId: string, summary: RunSummary): Promise<void>;

  artifact(pipeline: string, identity: string): Promise<ArtifactState | undefined>;
  /**
   * Claims an artifact for this run, marks it in progress (counting the attempt) and returns its
   * state. Shared stores return undefined when the artifact is done or skipped, or another live
   * worker holds it (a failed one is claimed: the engine only asks for it with --retry-failed); the
   * claim's token is re-checked by every commit that advances it.
   */
  startArtifact(lock: Lock, ref: ArtifactRef): Promise<ArtifactState | undefined>;
  /**
   * Claims a named stream (LISTING_STREAM, STREAMS_STREAM) for this run: true when this run holds
   * it now. Exclusive stores always grant it. Shared stores grant it to one live worker at a time,
   * renew it with the lock, and refuse `setPosition` (listing) or a commit carrying stream
   * positions (streams) from a run that does not hold it.
   */
  claimStream(lock: Lock, stream: string): Promise<boolean>;
  /**
   * Run ids of the pipeline's live runs (the lock holder; shared: every worker whose lease has not
   * ended): a sink's recovery leaves their temporary files alone.
   */
  liveRuns(pipeline: string): Promise<Set<string>>;
  /** Records an artifact that was found but cannot be collected (vanished, not applicable). */
  skipArtifact(pipeline: string, ref: ArtifactRef, reason: string): Promise<void>;

  /**
   * The commit point of the delivery protocol, one transaction: checks the lock is still held,
   * records the chunk files as pending rename, and advances every artifact the batches cover.
   */
  commit(lock: Lock, files: ChunkFile[], batches: Batch[]): Promise<void>;
  /** Chunks recorded but not yet confirmed renamed: to roll forward on start. */
  pendingChunks(pipeline: string): Promise<ChunkFile[]>;
  /** Confirms chunks renamed to their final names. */
  finishChunks(pipeline: string, files: ChunkFile[]): Promise<void>;

  position(pipeline: string, stream: string): Promise<unknown>;
  /**
   * Stores a position outside a chunk commit, for positions derived from what is already committed
   * (an S3 listing mark below which every key is done): losing such a write costs a little
   * re-listing, never a row. `undefined` removes the stream's position (a tailed generation that is
   * gone). Refused with PIPE_LOCK_LOST unless `lock` is still held.
   */
  setPosition(lock: Lock, stream: string, value: unknown): Promise<void>;
  /** The streams of this pipeline with a stored position whose name starts with `prefix`. */
  positionStreams(pipeline: string, prefix: string): Promise<string[]>;
  /** Keys remembered by mappers (dedupe) that have not expired, with their expiry (epoch ms). */
  rememberedKeys(pipeline: string, namespace: string, now: number): Promise<Map<string, number>>;

  status(pipeline: string): Promise<StatusReport>;
  close(): Promise<void>;
}
