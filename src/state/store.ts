/**
 * The state store interface. SQLite implements it today; a networked store (PostgreSQL) can
 * implement it later without touching sources or sinks. Every method is async for that reason.
 */
import type { Position } from '../errors.js';
import type { ArtifactRef, Batch, RowErrorRecord } from '../types.js';

export type ArtifactStatus = 'in_progress' | 'done' | 'failed' | 'skipped';

export interface ArtifactState {
  identity: string;
  uri: string;
  status: ArtifactStatus;
  /** Records consumed and committed: a resumed run skips this many. */
  position: number;
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
}

export interface StateStore {
  readonly location: string;
  /** A random id made when the state was created: sinks record it to notice a replaced state file. */
  readonly id: string;
  /** Takes the pipeline's lock, or throws PIPE_LOCKED naming the holder. */
  acquireLock(pipeline: string, owner: LockOwner, leaseMs: number): Promise<Lock>;
  /** Extends the lease; throws PIPE_LOCK_LOST if another run has taken it. */
  renewLock(lock: Lock): Promise<void>;
  releaseLock(lock: Lock): Promise<void>;

  beginRun(pipeline: string, run: RunRecord): Promise<void>;
  endRun(pipeline: string, runId: string, summary: RunSummary): Promise<void>;

  artifact(pipeline: string, identity: string): Promise<ArtifactState | undefined>;
  /** Marks an artifact in progress (counting the attempt) and returns its state. */
  startArtifact(pipeline: string, ref: ArtifactRef): Promise<ArtifactState>;
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
   * re-listing, never a row. Refused with PIPE_LOCK_LOST unless `lock` is still held.
   */
  setPosition(lock: Lock, stream: string, value: unknown): Promise<void>;
  /** Keys remembered by mappers (dedupe) that have not expired, with their expiry (epoch ms). */
  rememberedKeys(pipeline: string, namespace: string, now: number): Promise<Map<string, number>>;

  status(pipeline: string): Promise<StatusReport>;
  close(): Promise<void>;
}
