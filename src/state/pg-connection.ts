/**
 * The PostgreSQL connection under the state store: a `pg` pool opened on first use (`pg` is
 * loaded then, so commands that never touch PostgreSQL do not pay for it), the schema brought up
 * to date under an advisory lock, statements retried on deadlock, and every error from `pg`
 * rewritten into a PipeError with a stable code and the URL's password cut out. The password never
 * leaves this file: `location` masks it.
 */
import type { Pool, QueryResult, QueryResultRow } from 'pg';
import { PipeError } from '../errors.js';
import { redactText, redactUrl } from '../redact.js';
import { bootstrap, LOCK_LOST_SQLSTATE, MIGRATION_LOCK, pgMigrations } from './pg-migrations.js';

const INT8_OID = 20;
/** A deadlock or serialization failure rolls the whole statement back: trying it again is safe. */
const RETRYABLE = new Set(['40P01', '40001']);

/** The URL's password (as written and decoded), to be cut out of any text `pg` hands back. */
function secretsOf(url: string): string[] {
  const out = new Set<string>();
  try {
    const u = new URL(url);
    for (const raw of [u.password, u.searchParams.get('password') ?? '']) {
      if (!raw) continue;
      out.add(raw);
      try { out.add(decodeURIComponent(raw)); } catch { /* not percent-encoded */ }
    }
  } catch { /* not a parseable URL: redactText still masks the userinfo */ }
  return [...out].filter((s) => s.length >= 3);
}

/** SQLSTATE classes and socket errors that mean the database cannot be used right now. */
function isUnavailable(code: string | undefined, message: string): boolean {
  if (code && /^(08|28|3D|53|57|55P03|42501)/.test(code)) return true;
  if (code && /^E[A-Z]+$/.test(code)) return true;
  return /connection terminated|timeout expired|timeout exceeded when trying to connect|connect ECONN|getaddrinfo/i.test(message);
}

export class PgConnection {
  readonly location: string;
  /** Queries sent to the server (a commit is one): for benchmarks and tests. */
  roundTrips = 0;
  #url: string;
  #secrets: string[];
  #id = '';
  #ready: Promise<Pool> | undefined;
  #closed = false;

  constructor(url: string) {
    this.#url = url;
    this.#secrets = secretsOf(url);
    this.location = redactUrl(url);
  }

  /** The state's random id, made when the schema was created (known once the pool is open). */
  get id(): string {
    return this.#id;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const ready = this.#ready;
    this.#ready = undefined;
    const pool = await ready?.catch(() => undefined);
    await pool?.end().catch(() => undefined);
  }

  /** The pool, opened (and the schema brought up to date) on first use. */
  #pool(): Promise<Pool> {
    if (this.#closed) return Promise.reject(new PipeError('PIPE_INTERNAL', `state ${this.location} is closed`));
    if (!this.#ready) {
      this.#ready = this.#open();
      // A failed start is tried again by the next call rather than remembered.
      this.#ready.catch(() => { this.#ready = undefined; });
    }
    return this.#ready;
  }

  async #open(): Promise<Pool> {
    const { default: pg } = await import('pg');
    // bigint columns (counts, positions, tokens) as numbers: all stay far below 2^53.
    const getTypeParser = ((oid: number, format?: 'text' | 'binary') => (oid === INT8_OID && format !== 'binary'
      ? Number
      : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser;
    const pool = new pg.Pool({
      connectionString: this.#url, max: 4, idleTimeoutMillis: 10_000, connectionTimeoutMillis: 15_000, allowExitOnIdle: true,
      statement_timeout: 60_000, lock_timeout: 15_000, idle_in_transaction_session_timeout: 60_000, keepAlive: true,
      application_name: 'pipe', types: { getTypeParser },
    });
    // An idle connection the server drops (restart, failover) must not take the process down.
    pool.on('error', () => undefined);
    try {
      await this.#migrate(pool);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw this.#wrap(err, 'opening the state');
    }
    return pool;
  }

  /**
   * Brings the schema up to date: when it is behind, under a transaction-scoped advisory lock, so
   * that many workers starting on a new database at once apply each migration once.
   */
  async #migrate(pool: Pool): Promise<void> {
    const client = await pool.connect();
    const query = (sql: string, values: unknown[] = []) => {
      this.roundTrips++;
      return client.query<{ key: string; value: string }>(sql, values);
    };
    const meta = async () => {
      const r = await query("SELECT key, value FROM pipe_meta WHERE key IN ('schema_version', 'state_id')").catch((err: { code?: string }) => {
        if (err.code === '42P01') return undefined; // a new database: no pipe_meta yet
        throw err;
      });
      const get = (k: string) => r?.rows.find((m) => m.key === k)?.value;
      return { version: Number(get('schema_version') ?? 0), id: get('state_id') ?? '' };
    };
    try {
      let m = await meta();
      if (m.version < pgMigrations.length) {
        await query('BEGIN');
        try {
          await query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
          await query(bootstrap);
          m = await meta();
          if (m.version > pgMigrations.length) throw this.#tooNew(m.version);
          for (let v = m.version; v < pgMigrations.length; v++) await query(pgMigrations[v]!);
          await query(`INSERT INTO pipe_meta (key, value) VALUES ('schema_version', $1)
            ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [String(pgMigrations.length)]);
          await query('COMMIT');
        } catch (err) {
          await query('ROLLBACK').catch(() => undefined);
          throw err;
        }
        m = await meta();
      }
      if (m.version > pgMigrations.length) throw this.#tooNew(m.version);
      this.#id = m.id;
    } finally {
      client.release();
    }
  }

  #tooNew(version: number): PipeError {
    return new PipeError('PIPE_STATE_CORRUPT',
      `state ${this.location} has schema version ${version}, newer than this pipe (${pgMigrations.length}); upgrade pipe`);
  }

  /** One statement on the pool (a deadlock or serialization failure tried again); errors as PipeErrors. */
  async query<R extends QueryResultRow = QueryResultRow>(sql: string, values: unknown[], context: string): Promise<QueryResult<R>> {
    const pool = await this.#pool();
    for (let attempt = 1; ; attempt++) {
      this.roundTrips++;
      try {
        return await pool.query<R>(sql, values);
      } catch (err) {
        if (RETRYABLE.has((err as { code?: string }).code ?? '') && attempt < 3) continue;
        throw this.#wrap(err, context);
      }
    }
  }

  /**
   * Any error from `pg` as a PipeError with a stable code. The original is not kept as the cause:
   * `pg` errors can carry connection parameters, and the password must not leave this file.
   */
  #wrap(err: unknown, context: string): PipeError {
    if (err instanceof PipeError) return err;
    const e = err as { code?: string; message?: string; errors?: Array<{ message?: string }> };
    let message = e.message || e.errors?.map((x) => x.message).join('; ') || e.code || String(err);
    for (const s of this.#secrets) message = message.split(s).join('***');
    message = redactText(message);
    if (e.code === LOCK_LOST_SQLSTATE) {
      return new PipeError('PIPE_LOCK_LOST', `${context}: this worker lost its claim (${message}); nothing more is committed`);
    }
    if (isUnavailable(e.code, message)) {
      return new PipeError('PIPE_STATE_UNAVAILABLE', `state ${this.location} cannot be used: ${message}`);
    }
    return new PipeError('PIPE_INTERNAL', `state ${this.location}: ${context}: ${message}${e.code ? ` (${e.code})` : ''}`);
  }
}
