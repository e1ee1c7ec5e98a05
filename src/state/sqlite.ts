/**
 * The SQLite state store (better-sqlite3, WAL). One file holds every pipeline's state, keyed by
 * pipeline name. `commit` is the heart of exactly-once delivery: in one transaction it checks
 * that this run still holds the pipeline's lock (fencing token), records the chunk files about to
 * be renamed, and advances every artifact the committed batches cover.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { PipeError, type Position } from '../errors.js';
import { batchRows, type ArtifactRef, type Batch, type ResumePoint, type RowErrorRecord } from '../types.js';
import { migrations } from './migrations.js';
import type {
  ArtifactState, ChunkFile, Lock, LockOwner, RunRecord, RunSummary, StateStore, StatusReport,
} from './store.js';

/** Row errors kept in the state file per artifact; all of them go to the sink's dead-letter files. */
const ROW_ERRORS_KEPT = 100;
const ROW_ERRORS_TABLE_MAX = 10_000;

interface ArtifactRow {
  identity: string; uri: string; status: ArtifactState['status']; position: number; rows: number;
  row_errors: number; attempts: number; error_code: string | null; error_message: string | null;
  error_position: string | null; updated_at: string; resume_at: string | null;
}

function toArtifactState(r: ArtifactRow): ArtifactState {
  const s: ArtifactState = {
    identity: r.identity, uri: r.uri, status: r.status, position: r.position, rows: r.rows,
    rowErrors: r.row_errors, attempts: r.attempts, updatedAt: r.updated_at,
  };
  if (r.error_code) s.errorCode = r.error_code;
  if (r.error_message) s.errorMessage = r.error_message;
  if (r.error_position) s.errorPosition = JSON.parse(r.error_position) as Position;
  if (r.resume_at) s.resumeAt = JSON.parse(r.resume_at) as ResumePoint;
  return s;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class SqliteStore implements StateStore {
  readonly location: string;
  readonly shared = false;
  id = '';
  #db: Database.Database;
  #host: string;

  constructor(file: string, host: string) {
    this.location = file;
    this.#host = host;
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    try {
      this.#db = new Database(file);
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = FULL');
      this.#db.pragma('busy_timeout = 15000');
      this.#migrate();
      this.id = (this.#prepare("SELECT value FROM meta WHERE key = 'state_id'").get() as { value: string }).value;
    } catch (err) {
      if (err instanceof PipeError) throw err;
      throw new PipeError('PIPE_STATE_CORRUPT',
        `state file ${file} cannot be used: ${(err as Error).message}`, { cause: err });
    }
  }

  #statements = new Map<string, Database.Statement>();

  /** Prepared once per SQL text: preparing on every call costs more than the work on small artifacts. */
  #prepare(sql: string): Database.Statement {
    let st = this.#statements.get(sql);
    if (!st) {
      st = this.#db.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  /**
   * Brings the schema up to date. The version is read inside the write transaction, so two
   * processes opening a new state file at once cannot both apply the same migration.
   */
  #migrate(): void {
    const current = (): number => this.#db.pragma('user_version', { simple: true }) as number;
    if (current() === migrations.length) return;
    this.#db.transaction(() => {
      const version = current();
      if (version > migrations.length) {
        throw new PipeError('PIPE_STATE_CORRUPT',
          `state file ${this.location} has schema version ${version}, newer than this pipe (${migrations.length}); upgrade pipe`);
      }
      for (let v = version; v < migrations.length; v++) this.#db.exec(migrations[v]!);
      this.#db.pragma(`user_version = ${migrations.length}`);
    }).immediate();
  }

  async acquireLock(pipeline: string, owner: LockOwner, leaseMs: number): Promise<Lock> {
    const take = this.#db.transaction(() => {
      const now = Date.now();
      const held = this.#prepare('SELECT * FROM locks WHERE pipeline = ?').get(pipeline) as
        | { pid: number; host: string; run_id: string; token: number; expires_at: number } | undefined;
      // On this host a dead owner is known at once; elsewhere only the lease's end tells.
      const ownerGone = !!held && held.host === this.#host && !isAlive(held.pid);
      if (held) {
        if (held.expires_at > now && !ownerGone) {
          throw new PipeError('PIPE_LOCKED',
            `pipeline ${pipeline} is locked by pid ${held.pid} on ${held.host} (run ${held.run_id})`);
        }
      }
      const token = (held?.token ?? 0) + 1;
      // A released lock has expires_at 0; anything else was left behind by a run that did not finish.
      const takenOverFrom = held && held.expires_at !== 0
        ? { owner: { pid: held.pid, host: held.host, runId: held.run_id }, reason: ownerGone ? 'dead' as const : 'lease expired' as const }
        : undefined;
      this.#prepare(`INSERT INTO locks (pipeline, pid, host, run_id, token, expires_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (pipeline) DO UPDATE SET pid = excluded.pid, host = excluded.host, run_id = excluded.run_id,
        token = excluded.token, expires_at = excluded.expires_at`)
        .run(pipeline, owner.pid, owner.host, owner.runId, token, now + leaseMs);
      return { token, takenOverFrom };
    }).immediate;
    const { token, takenOverFrom } = take();
    return { pipeline, owner, token, leaseMs, ...(takenOverFrom ? { takenOverFrom } : {}) };
  }

  /**
   * Extends the lease, but not one that has already run out: a run stalled past its lease (a
   * SIGSTOP, a VM pause) has lost the lock whether or not another run has taken it yet, so it
   * cannot race a waiting run back to the lock when it wakes.
   */
  async renewLock(lock: Lock): Promise<void> {
    const now = Date.now();
    const r = this.#prepare('UPDATE locks SET expires_at = ? WHERE pipeline = ? AND token = ? AND expires_at >= ?')
      .run(now + lock.leaseMs, lock.pipeline, lock.token, now);
    if (r.changes === 0) throw this.#lockLost(lock);
  }

  async releaseLock(lock: Lock): Promise<void> {
    // The row stays, so the next holder's fencing token is still larger than every earlier one.
    this.#prepare('UPDATE locks SET expires_at = 0 WHERE pipeline = ? AND token = ?').run(lock.pipeline, lock.token);
  }

  #lockLost(lock: Lock): PipeError {
    return new PipeError('PIPE_LOCK_LOST', `pipeline ${lock.pipeline}: this run lost its lock to another run; nothing more is committed`);
  }

  async beginRun(pipeline: string, run: RunRecord): Promise<void> {
    this.#prepare('INSERT INTO runs (run_id, pipeline, command, pid, started_at) VALUES (?, ?, ?, ?, ?)')
      .run(run.runId, pipeline, run.command, run.pid, run.startedAt);
  }

  async endRun(pipeline: string, runId: string, s: RunSummary): Promise<void> {
    this.#prepare(`UPDATE runs SET ended_at = ?, artifacts = ?, failed = ?, rows = ?, row_errors = ?, skipped = ?,
      bytes = ?, exit_code = ? WHERE run_id = ? AND pipeline = ?`)
      .run(new Date().toISOString(), s.artifacts, s.failed, s.rows, s.rowErrors, s.skipped, s.bytes, s.exitCode, runId, pipeline);
  }

  async artifact(pipeline: string, identity: string): Promise<ArtifactState | undefined> {
    const r = this.#prepare('SELECT * FROM artifacts WHERE pipeline = ? AND identity = ?').get(pipeline, identity) as ArtifactRow | undefined;
    return r && toArtifactState(r);
  }

  async startArtifact(lock: Lock, ref: ArtifactRef): Promise<ArtifactState> {
    const pipeline = lock.pipeline;
    const now = new Date().toISOString();
    // Marking an artifact in progress need not survive a power cut (its commits do, and they sync
    // the log this write sits in), so it skips the fsync that costs milliseconds per artifact.
    this.#db.pragma('synchronous = NORMAL');
    try {
      this.#upsertStarted(pipeline, ref, now);
    } finally {
      this.#db.pragma('synchronous = FULL');
    }
    return (await this.artifact(pipeline, ref.identity))!;
  }

  #upsertStarted(pipeline: string, ref: ArtifactRef, now: string): void {
    this.#prepare(`INSERT INTO artifacts (pipeline, identity, uri, size, status, attempts, first_seen, updated_at)
      VALUES (?, ?, ?, ?, 'in_progress', 1, ?, ?)
      ON CONFLICT (pipeline, identity) DO UPDATE SET status = 'in_progress', attempts = attempts + 1, updated_at = excluded.updated_at`)
      .run(pipeline, ref.identity, ref.uri, ref.size ?? null, now, now);
  }

  /** The lock is exclusive: its holder holds every stream. */
  async claimStream(): Promise<boolean> {
    return true;
  }

  async liveRuns(pipeline: string): Promise<Set<string>> {
    const r = this.#prepare('SELECT run_id FROM locks WHERE pipeline = ? AND expires_at > ?').get(pipeline, Date.now()) as { run_id: string } | undefined;
    return new Set(r ? [r.run_id] : []);
  }

  async skipArtifact(pipeline: string, ref: ArtifactRef, reason: string): Promise<void> {
    const now = new Date().toISOString();
    this.#prepare(`INSERT INTO artifacts (pipeline, identity, uri, size, status, error_message, first_seen, updated_at)
      VALUES (?, ?, ?, ?, 'skipped', ?, ?, ?)
      ON CONFLICT (pipeline, identity) DO UPDATE SET status = 'skipped', error_message = excluded.error_message, updated_at = excluded.updated_at`)
      .run(pipeline, ref.identity, ref.uri, ref.size ?? null, reason, now, now);
  }

  async commit(lock: Lock, files: ChunkFile[], batches: Batch[]): Promise<void> {
    const db = this.#db;
    const pipeline = lock.pipeline;
    const now = new Date().toISOString();
    const insertChunk = this.#prepare('INSERT INTO chunks (pipeline, final, tmp, rows, bytes, committed_at) VALUES (?, ?, ?, ?, ?, ?)');
    // The resume point moves with the position (a batch behind the stored position leaves it), is
    // kept while batches carry none (it stays valid: its record is still at or before the position)
    // and is dropped once the artifact is done. SET expressions read the row as it was.
    const advance = this.#prepare(`UPDATE artifacts SET position = MAX(position, @position), rows = rows + @rows,
      resume_at = CASE WHEN @status = 'done' THEN NULL WHEN @resumeAt IS NOT NULL AND @position >= position THEN @resumeAt ELSE resume_at END,
      row_errors = row_errors + @rowErrors, status = @status, error_code = @errorCode, error_message = @errorMessage,
      error_position = @errorPosition, updated_at = @now WHERE pipeline = @pipeline AND identity = @identity`);
    const keptErrors = this.#prepare('SELECT row_errors FROM artifacts WHERE pipeline = ? AND identity = ?');
    const insertRowError = this.#prepare(`INSERT INTO row_errors (pipeline, artifact, uri, position, code, message, raw, at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    const remember = this.#prepare(`INSERT INTO remembered (pipeline, namespace, key, expires_at) VALUES (?, ?, ?, ?)
      ON CONFLICT DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`);
    const setPosition = this.#prepare(`INSERT INTO positions (pipeline, stream, value, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`);

    db.transaction(() => {
      const held = this.#prepare('SELECT token FROM locks WHERE pipeline = ?').get(pipeline) as { token: number } | undefined;
      if (held?.token !== lock.token) throw this.#lockLost(lock);
      for (const f of files) insertChunk.run(pipeline, f.final, f.tmp, f.rows, f.bytes, now);
      for (const b of batches) {
        const identity = b.artifact.identity;
        let kept = (keptErrors.get(pipeline, identity) as { row_errors: number } | undefined)?.row_errors ?? 0;
        for (const e of b.rowErrors) {
          if (kept++ >= ROW_ERRORS_KEPT) break;
          insertRowError.run(pipeline, identity, e.uri, JSON.stringify(e.position), e.code, e.message, e.raw ?? null, now);
        }
        for (const r of b.remember ?? []) remember.run(pipeline, r.namespace, r.key, r.expiresAt);
        for (const [stream, value] of Object.entries(b.streams ?? {})) setPosition.run(pipeline, stream, JSON.stringify(value), now);
        // A stream's batches move its cursor; only artifacts have a row to advance.
        if (b.streams) continue;
        const status = b.failed ? 'failed' : b.vanished ? 'skipped' : b.done ? 'done' : 'in_progress';
        const error = b.failed ?? b.vanished;
        advance.run({
          pipeline, identity, now, status, position: b.position, rows: batchRows(b), rowErrors: b.rowErrors.length,
          resumeAt: b.resumeAt ? JSON.stringify(b.resumeAt) : null,
          errorCode: error?.code ?? null, errorMessage: error?.message ?? null,
          errorPosition: error?.position ? JSON.stringify(error.position) : null,
        });
      }
      // Row errors of streams have no artifact to count against: keep the table bounded overall.
      this.#prepare('DELETE FROM row_errors WHERE pipeline = ? AND id <= (SELECT MAX(id) FROM row_errors WHERE pipeline = ?) - ?')
        .run(pipeline, pipeline, ROW_ERRORS_TABLE_MAX);
    }).immediate();
  }

  async pendingChunks(pipeline: string): Promise<ChunkFile[]> {
    return this.#prepare('SELECT tmp, final, rows, bytes FROM chunks WHERE pipeline = ? ORDER BY final').all(pipeline) as ChunkFile[];
  }

  async finishChunks(pipeline: string, files: ChunkFile[]): Promise<void> {
    const del = this.#prepare('DELETE FROM chunks WHERE pipeline = ? AND final = ?');
    this.#db.transaction(() => { for (const f of files) del.run(pipeline, f.final); })();
  }

  async setPosition(lock: Lock, stream: string, value: unknown): Promise<void> {
    this.#db.transaction(() => {
      const held = this.#prepare('SELECT token FROM locks WHERE pipeline = ?').get(lock.pipeline) as { token: number } | undefined;
      if (held?.token !== lock.token) throw this.#lockLost(lock);
      if (value === undefined) this.#prepare('DELETE FROM positions WHERE pipeline = ? AND stream = ?').run(lock.pipeline, stream);
      else {
        this.#prepare(`INSERT INTO positions (pipeline, stream, value, updated_at) VALUES (?, ?, ?, ?)
          ON CONFLICT DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`)
          .run(lock.pipeline, stream, JSON.stringify(value), new Date().toISOString());
      }
    }).immediate();
  }

  async positionStreams(pipeline: string, prefix: string): Promise<string[]> {
    const rows = this.#prepare('SELECT stream FROM positions WHERE pipeline = ? AND substr(stream, 1, ?) = ? ORDER BY stream')
      .all(pipeline, prefix.length, prefix) as Array<{ stream: string }>;
    return rows.map((r) => r.stream);
  }

  async position(pipeline: string, stream: string): Promise<unknown> {
    const r = this.#prepare('SELECT value FROM positions WHERE pipeline = ? AND stream = ?').get(pipeline, stream) as { value: string } | undefined;
    return r ? JSON.parse(r.value) : undefined;
  }

  async rememberedKeys(pipeline: string, namespace: string, now: number): Promise<Map<string, number>> {
    this.#prepare('DELETE FROM remembered WHERE pipeline = ? AND namespace = ? AND expires_at <= ?').run(pipeline, namespace, now);
    const rows = this.#prepare('SELECT key, expires_at FROM remembered WHERE pipeline = ? AND namespace = ? ORDER BY expires_at')
      .all(pipeline, namespace) as Array<{ key: string; expires_at: number }>;
    return new Map(rows.map((r) => [r.key, r.expires_at]));
  }

  async status(pipeline: string): Promise<StatusReport> {
    const db = this.#db;
    const counts = this.#prepare('SELECT status, COUNT(*) AS n FROM artifacts WHERE pipeline = ? GROUP BY status').all(pipeline) as Array<{ status: string; n: number }>;
    const count = (s: string) => counts.find((c) => c.status === s)?.n ?? 0;
    const list = (s: string) => (this.#prepare('SELECT * FROM artifacts WHERE pipeline = ? AND status = ? ORDER BY updated_at DESC LIMIT 100')
      .all(pipeline, s) as ArtifactRow[]).map(toArtifactState);
    const runs = (this.#prepare('SELECT * FROM runs WHERE pipeline = ? ORDER BY started_at DESC LIMIT 10').all(pipeline) as Array<Record<string, unknown>>)
      .map((r): RunRecord => ({
        runId: r.run_id as string, command: r.command as string, pid: r.pid as number, startedAt: r.started_at as string,
        ...(r.ended_at ? {
          endedAt: r.ended_at as string, artifacts: r.artifacts as number, failed: r.failed as number, rows: r.rows as number,
          rowErrors: r.row_errors as number, skipped: r.skipped as number, bytes: r.bytes as number, exitCode: r.exit_code as number,
        } : {}),
      }));
    const positions = (this.#prepare('SELECT stream, value, updated_at FROM positions WHERE pipeline = ? ORDER BY stream').all(pipeline) as Array<{ stream: string; value: string; updated_at: string }>)
      .map((p) => ({ stream: p.stream, value: JSON.parse(p.value) as unknown, updatedAt: p.updated_at }));
    const rowErrors = (this.#prepare('SELECT * FROM row_errors WHERE pipeline = ? ORDER BY id DESC LIMIT 20').all(pipeline) as Array<Record<string, string>>)
      .map((e): RowErrorRecord => ({
        artifact: e.artifact!, uri: e.uri!, position: JSON.parse(e.position!) as Position, code: e.code!, message: e.message!,
        ...(e.raw ? { raw: e.raw } : {}),
      }));
    const lock = this.#prepare('SELECT * FROM locks WHERE pipeline = ? AND expires_at > ?').get(pipeline, Date.now()) as { pid: number; host: string; run_id: string; expires_at: number } | undefined;
    return {
      pipeline,
      artifacts: { done: count('done'), failed: count('failed'), inProgress: count('in_progress'), skipped: count('skipped') },
      failed: list('failed'), inProgress: list('in_progress'), skipped: list('skipped'), positions, runs, rowErrors,
      ...(lock ? { lock: { owner: { pid: lock.pid, host: lock.host, runId: lock.run_id }, expiresAt: new Date(lock.expires_at).toISOString() } } : {}),
    };
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
