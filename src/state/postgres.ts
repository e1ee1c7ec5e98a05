/**
 * The PostgreSQL state store: one database shared by many workers of a pipeline (`state:
 * postgres://…`). Workers register instead of locking; each artifact is claimed by `startArtifact`
 * and each named stream by `claimStream`, with a lease renewed by the worker's heartbeat and a
 * fencing token from one sequence. `commit` is one call of the `pipe_commit` function (one round
 * trip, one transaction): it re-checks, under row locks, that the worker is live and still holds
 * the claim token of every artifact it advances (and the streams claim, for stream positions)
 * before it records anything, so a worker that lost a claim can never commit.
 *
 * Lease times come from the database clock. The connection (pool, migrations, retries, errors
 * without the password) is pg-connection.ts.
 */
import type { QueryResult, QueryResultRow } from 'pg';
import { PipeError, type Position } from '../errors.js';
import { batchRows, type ArtifactRef, type Batch, type ResumePoint, type RowErrorRecord } from '../types.js';
import { PgConnection } from './pg-connection.js';
import {
  LISTING_STREAM, STREAMS_STREAM, type ArtifactState, type ChunkFile, type Lock, type LockOwner, type RunRecord,
  type RunSummary, type StateStore, type StatusReport, type WorkerInfo,
} from './store.js';

/** As the SQLite store: row errors kept per artifact, and in the whole table per pipeline. */
const ROW_ERRORS_KEPT = 100;
const ROW_ERRORS_TABLE_MAX = 10_000;
interface ArtifactRow {
  identity: string; uri: string; status: ArtifactState['status']; position: number; rows: number;
  row_errors: number; attempts: number; error_code: string | null; error_message: string | null;
  error_position: Position | null; updated_at: Date; resume_at: ResumePoint | null;
}

function toArtifactState(r: ArtifactRow): ArtifactState {
  const s: ArtifactState = {
    identity: r.identity, uri: r.uri, status: r.status, position: r.position, rows: r.rows,
    rowErrors: r.row_errors, attempts: r.attempts, updatedAt: r.updated_at.toISOString(),
  };
  if (r.error_code) s.errorCode = r.error_code;
  if (r.error_message) s.errorMessage = r.error_message;
  if (r.error_position) s.errorPosition = r.error_position;
  if (r.resume_at) s.resumeAt = r.resume_at;
  return s;
}

const claimKey = (lock: Lock, name: string) => `${lock.token}\n${name}`;

export class PostgresStore implements StateStore {
  readonly location: string;
  readonly shared = true;
  readonly #db: PgConnection;
  /** Claim tokens this process was given, by worker token and artifact identity or stream name. */
  #claims = new Map<string, number>();

  constructor(url: string, host: string) {
    void host; // Workers are told apart by their registration, not by host: there is no pid check to make.
    this.#db = new PgConnection(url);
    this.location = this.#db.location;
  }

  /** A random id made when the state was created (known once the store has been used). */
  get id(): string {
    return this.#db.id;
  }

  /** Queries sent to the server (a commit is one): for benchmarks and tests. */
  get roundTrips(): number {
    return this.#db.roundTrips;
  }

  async acquireLock(pipeline: string, owner: LockOwner, leaseMs: number): Promise<Lock> {
    // Registrations whose lease has ended are gone for good: their claims are anyone's to take.
    const r = await this.#query<{ token: number }>(`WITH gone AS (DELETE FROM pipe_workers WHERE pipeline = $1 AND expires_at < clock_timestamp())
      INSERT INTO pipe_workers (token, pipeline, run_id, pid, host, started_at, heartbeat_at, expires_at)
      VALUES (nextval('pipe_tokens'), $1, $2, $3, $4, clock_timestamp(), clock_timestamp(), clock_timestamp() + $5::float8 * interval '1 millisecond')
      RETURNING token`, [pipeline, owner.runId, owner.pid, owner.host, leaseMs], `pipeline ${pipeline}`);
    return { pipeline, owner, token: r.rows[0]!.token, leaseMs };
  }

  async renewLock(lock: Lock): Promise<void> {
    const r = await this.#query<{ ok: boolean }>('SELECT pipe_renew($1, $2, $3) AS ok', [lock.pipeline, lock.token, lock.leaseMs], `pipeline ${lock.pipeline}`);
    if (!r.rows[0]!.ok) throw this.#lockLost(lock, 'its lease ran out before it was renewed');
  }

  async releaseLock(lock: Lock): Promise<void> {
    await this.#query('SELECT pipe_release($1, $2, $3)', [lock.pipeline, lock.token, lock.owner.runId], `pipeline ${lock.pipeline}`);
    for (const k of [...this.#claims.keys()]) if (k.startsWith(`${lock.token}\n`)) this.#claims.delete(k);
  }

  #lockLost(lock: Lock, why: string): PipeError {
    return new PipeError('PIPE_LOCK_LOST', `pipeline ${lock.pipeline}: this worker lost its claim (${why}); nothing more is committed`);
  }

  async beginRun(pipeline: string, run: RunRecord): Promise<void> {
    await this.#query('INSERT INTO pipe_runs (run_id, pipeline, command, pid, started_at) VALUES ($1, $2, $3, $4, $5)',
      [run.runId, pipeline, run.command, run.pid, run.startedAt], `pipeline ${pipeline}`);
  }

  async endRun(pipeline: string, runId: string, s: RunSummary): Promise<void> {
    await this.#query(`UPDATE pipe_runs SET ended_at = clock_timestamp(), artifacts = $3, failed = $4, rows = $5, row_errors = $6,
      skipped = $7, bytes = $8, exit_code = $9 WHERE run_id = $1 AND pipeline = $2`,
    [runId, pipeline, s.artifacts, s.failed, s.rows, s.rowErrors, s.skipped, s.bytes, s.exitCode], `pipeline ${pipeline}`);
  }

  async artifact(pipeline: string, identity: string): Promise<ArtifactState | undefined> {
    const r = await this.#query<ArtifactRow>('SELECT * FROM pipe_artifacts WHERE pipeline = $1 AND identity = $2', [pipeline, identity], `pipeline ${pipeline}`);
    return r.rows[0] && toArtifactState(r.rows[0]);
  }

  /**
   * One call of `pipe_claim`: the row is made if new, then taken with FOR UPDATE SKIP LOCKED when
   * it is neither finished nor claimed by another worker with a live lease. Of two claimers at
   * once, one gets it; the other, finding it claimed (or locked), gets undefined.
   */
  async startArtifact(lock: Lock, ref: ArtifactRef): Promise<ArtifactState | undefined> {
    const r = await this.#query<ArtifactRow & { claim_token: number | null }>('SELECT * FROM pipe_claim($1, $2, $3, $4, $5, $6)',
      [lock.pipeline, lock.token, ref.identity, ref.uri, ref.size ?? null, lock.leaseMs], `pipeline ${lock.pipeline}`);
    const row = r.rows[0];
    if (!row || row.claim_token === null) return undefined;
    this.#claims.set(claimKey(lock, `artifact:${ref.identity}`), row.claim_token);
    return toArtifactState(row);
  }

  /** Granted when unclaimed, when the holder's lease has ended, or when already ours (then extended). */
  async claimStream(lock: Lock, stream: string): Promise<boolean> {
    const r = await this.#query<{ live: number; token: number | null }>(`WITH w AS (
        SELECT run_id FROM pipe_workers WHERE pipeline = $1 AND token = $2 AND expires_at > clock_timestamp()
      ), up AS (
        INSERT INTO pipe_stream_claims AS c (pipeline, stream, run_id, token, expires_at)
        SELECT $1, $3, w.run_id, nextval('pipe_tokens'), clock_timestamp() + $4::float8 * interval '1 millisecond' FROM w
        ON CONFLICT (pipeline, stream) DO UPDATE SET
          token = CASE WHEN c.run_id = excluded.run_id THEN c.token ELSE excluded.token END,
          run_id = excluded.run_id, expires_at = excluded.expires_at
        WHERE c.run_id = excluded.run_id OR c.expires_at <= clock_timestamp()
        RETURNING c.token
      )
      SELECT (SELECT count(*) FROM w)::int AS live, up.token FROM (SELECT 1) AS one LEFT JOIN up ON true`,
    [lock.pipeline, lock.token, stream, lock.leaseMs], `pipeline ${lock.pipeline}`);
    const row = r.rows[0]!;
    if (!row.live) throw this.#lockLost(lock, 'its lease has ended');
    if (row.token === null) return false;
    this.#claims.set(claimKey(lock, `stream:${stream}`), row.token);
    return true;
  }

  async liveRuns(pipeline: string): Promise<Set<string>> {
    const r = await this.#query<{ run_id: string }>('SELECT run_id FROM pipe_workers WHERE pipeline = $1 AND expires_at > clock_timestamp()',
      [pipeline], `pipeline ${pipeline}`);
    return new Set(r.rows.map((w) => w.run_id));
  }

  async skipArtifact(pipeline: string, ref: ArtifactRef, reason: string): Promise<void> {
    await this.#query(`INSERT INTO pipe_artifacts (pipeline, identity, uri, size, status, error_message, first_seen, updated_at)
      VALUES ($1, $2, $3, $4, 'skipped', $5, clock_timestamp(), clock_timestamp())
      ON CONFLICT (pipeline, identity) DO UPDATE SET status = 'skipped', error_message = excluded.error_message, updated_at = excluded.updated_at`,
    [pipeline, ref.identity, ref.uri, ref.size ?? null, reason], `pipeline ${pipeline}`);
  }

  async commit(lock: Lock, files: ChunkFile[], batches: Batch[]): Promise<void> {
    const claims: Record<string, number> = {};
    const remember = new Map<string, [string, string, number]>();
    const payload: Array<Record<string, unknown>> = [];
    let streams = false;
    for (const b of batches) {
      const identity = b.artifact.identity;
      for (const r of b.remember ?? []) {
        const k = `${r.namespace}\n${r.key}`;
        if ((remember.get(k)?.[2] ?? -Infinity) < r.expiresAt) remember.set(k, [r.namespace, r.key, r.expiresAt]);
      }
      const rowErrors = b.rowErrors.map((e) => ({ uri: e.uri, position: e.position, code: e.code, message: e.message, raw: e.raw }));
      if (b.streams) {
        streams = true;
        payload.push({ identity, rowErrors, streams: Object.entries(b.streams).map(([k, v]) => [k, JSON.stringify(v)]) });
        continue;
      }
      const token = this.#claims.get(claimKey(lock, `artifact:${identity}`));
      if (token === undefined) throw this.#lockLost(lock, `it holds no claim on ${b.artifact.uri}`);
      claims[identity] = token;
      const error = b.failed ?? b.vanished;
      payload.push({
        identity, rowErrors, position: b.position, rows: batchRows(b),
        status: b.failed ? 'failed' : b.vanished ? 'skipped' : b.done ? 'done' : 'in_progress',
        errorCode: error?.code, errorMessage: error?.message, errorPosition: error?.position, resumeAt: b.resumeAt,
      });
    }
    const streamsToken = streams ? this.#claims.get(claimKey(lock, `stream:${STREAMS_STREAM}`)) : null;
    if (streamsToken === undefined) throw this.#lockLost(lock, 'it does not hold the streams');
    await this.#query('SELECT pipe_commit($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
      lock.pipeline, lock.token, JSON.stringify(claims), streamsToken,
      JSON.stringify(files.map((f) => ({ tmp: f.tmp, final: f.final, rows: f.rows, bytes: f.bytes }))),
      JSON.stringify(payload), JSON.stringify([...remember.values()]), ROW_ERRORS_KEPT, ROW_ERRORS_TABLE_MAX,
    ], `pipeline ${lock.pipeline}`);
    for (const b of batches) {
      if (!b.streams && (b.done || b.failed || b.vanished)) this.#claims.delete(claimKey(lock, `artifact:${b.artifact.identity}`));
    }
  }

  async pendingChunks(pipeline: string): Promise<ChunkFile[]> {
    const r = await this.#query<ChunkFile>('SELECT tmp, final, rows, bytes FROM pipe_chunks WHERE pipeline = $1 ORDER BY final', [pipeline], `pipeline ${pipeline}`);
    return r.rows;
  }

  async finishChunks(pipeline: string, files: ChunkFile[]): Promise<void> {
    if (!files.length) return;
    // Locked in order first: workers recovering the same chunks at once must not deadlock.
    await this.#query(`WITH l AS (SELECT final FROM pipe_chunks WHERE pipeline = $1 AND final = ANY($2::text[]) ORDER BY final FOR UPDATE)
      DELETE FROM pipe_chunks c USING l WHERE c.pipeline = $1 AND c.final = l.final`, [pipeline, files.map((f) => f.final)], `pipeline ${pipeline}`);
  }

  async setPosition(lock: Lock, stream: string, value: unknown): Promise<void> {
    const token = this.#claims.get(claimKey(lock, `stream:${LISTING_STREAM}`));
    if (token === undefined) throw this.#lockLost(lock, 'it does not hold the listing');
    const held = `WITH held AS (
        SELECT 1 FROM pipe_stream_claims c JOIN pipe_workers w ON w.pipeline = c.pipeline AND w.run_id = c.run_id
        WHERE c.pipeline = $1 AND c.stream = $2 AND c.token = $3 AND w.token = $4
          AND w.expires_at > clock_timestamp() AND c.expires_at > clock_timestamp()
        FOR UPDATE OF c
      )`;
    const r = value === undefined
      ? await this.#query(`${held}, gone AS (DELETE FROM pipe_positions WHERE pipeline = $1 AND stream = $5 AND EXISTS (SELECT 1 FROM held))
        SELECT 1 FROM held`, [lock.pipeline, LISTING_STREAM, token, lock.token, stream], `pipeline ${lock.pipeline}`)
      : await this.#query(`${held}
        INSERT INTO pipe_positions (pipeline, stream, value, updated_at) SELECT $1, $5, $6, clock_timestamp() FROM held
        ON CONFLICT (pipeline, stream) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
        RETURNING 1`, [lock.pipeline, LISTING_STREAM, token, lock.token, stream, JSON.stringify(value)], `pipeline ${lock.pipeline}`);
    if (!r.rowCount) throw this.#lockLost(lock, 'another worker holds the listing, or its lease has ended');
  }

  async positionStreams(pipeline: string, prefix: string): Promise<string[]> {
    const r = await this.#query<{ stream: string }>('SELECT stream FROM pipe_positions WHERE pipeline = $1 AND left(stream, $2) = $3 ORDER BY stream',
      [pipeline, prefix.length, prefix], `pipeline ${pipeline}`);
    return r.rows.map((row) => row.stream);
  }

  async position(pipeline: string, stream: string): Promise<unknown> {
    const r = await this.#query<{ value: string }>('SELECT value FROM pipe_positions WHERE pipeline = $1 AND stream = $2', [pipeline, stream], `pipeline ${pipeline}`);
    return r.rows[0] ? JSON.parse(r.rows[0].value) : undefined;
  }

  async rememberedKeys(pipeline: string, namespace: string, now: number): Promise<Map<string, number>> {
    const r = await this.#query<{ key: string; expires_at: number }>(`WITH gone AS (
        DELETE FROM pipe_remembered WHERE pipeline = $1 AND namespace = $2 AND expires_at <= $3
      )
      SELECT key, expires_at FROM pipe_remembered WHERE pipeline = $1 AND namespace = $2 AND expires_at > $3 ORDER BY expires_at`,
    [pipeline, namespace, now], `pipeline ${pipeline}`);
    return new Map(r.rows.map((k) => [k.key, k.expires_at]));
  }

  async status(pipeline: string): Promise<StatusReport> {
    const q = <R extends QueryResultRow>(sql: string) => this.#query<R>(sql, [pipeline], `pipeline ${pipeline}`).then((r) => r.rows);
    const list = (status: string) => q<ArtifactRow>(`SELECT * FROM pipe_artifacts WHERE pipeline = $1 AND status = '${status}' ORDER BY updated_at DESC LIMIT 100`)
      .then((rows) => rows.map(toArtifactState));
    const [counts, failed, inProgress, skipped, runs, positions, rowErrors, workers] = await Promise.all([
      q<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM pipe_artifacts WHERE pipeline = $1 GROUP BY status'),
      list('failed'), list('in_progress'), list('skipped'),
      q<Record<string, unknown>>('SELECT * FROM pipe_runs WHERE pipeline = $1 ORDER BY started_at DESC LIMIT 10'),
      q<{ stream: string; value: string; updated_at: Date }>('SELECT stream, value, updated_at FROM pipe_positions WHERE pipeline = $1 ORDER BY stream'),
      q<Record<string, unknown>>('SELECT * FROM pipe_row_errors WHERE pipeline = $1 ORDER BY id DESC LIMIT 20'),
      q<{ run_id: string; pid: number; host: string; started_at: Date; heartbeat_at: Date; expires_at: Date; claims: string[] }>(`SELECT w.*,
          array(SELECT a.uri FROM pipe_artifacts a WHERE a.pipeline = w.pipeline AND a.claim_run = w.run_id
            AND a.claim_expires > clock_timestamp() ORDER BY a.uri)
          || array(SELECT s.stream FROM pipe_stream_claims s WHERE s.pipeline = w.pipeline AND s.run_id = w.run_id
            AND s.expires_at > clock_timestamp() ORDER BY s.stream) AS claims
        FROM pipe_workers w WHERE w.pipeline = $1 AND w.expires_at > clock_timestamp() ORDER BY w.started_at, w.token`),
    ]);
    const count = (s: string) => counts.find((c) => c.status === s)?.n ?? 0;
    const iso = (d: unknown) => (d as Date).toISOString();
    return {
      pipeline,
      artifacts: { done: count('done'), failed: count('failed'), inProgress: count('in_progress'), skipped: count('skipped') },
      failed, inProgress, skipped,
      positions: positions.map((p) => ({ stream: p.stream, value: JSON.parse(p.value) as unknown, updatedAt: p.updated_at.toISOString() })),
      runs: runs.map((r): RunRecord => ({
        runId: r.run_id as string, command: r.command as string, pid: r.pid as number, startedAt: iso(r.started_at),
        ...(r.ended_at ? {
          endedAt: iso(r.ended_at), artifacts: r.artifacts as number, failed: r.failed as number, rows: r.rows as number,
          rowErrors: r.row_errors as number, skipped: r.skipped as number, bytes: r.bytes as number, exitCode: r.exit_code as number,
        } : {}),
      })),
      rowErrors: rowErrors.map((e): RowErrorRecord => ({
        artifact: e.artifact as string, uri: e.uri as string, position: e.position as Position, code: e.code as string,
        message: e.message as string, ...(e.raw ? { raw: e.raw as string } : {}),
      })),
      workers: workers.map((w): WorkerInfo => ({
        owner: { pid: w.pid, host: w.host, runId: w.run_id },
        startedAt: w.started_at.toISOString(), heartbeatAt: w.heartbeat_at.toISOString(), expiresAt: w.expires_at.toISOString(),
        claims: w.claims,
      })),
    };
  }

  close(): Promise<void> {
    return this.#db.close();
  }

  #query<R extends QueryResultRow = QueryResultRow>(sql: string, values: unknown[], context: string): Promise<QueryResult<R>> {
    return this.#db.query<R>(sql, values, context);
  }
}
