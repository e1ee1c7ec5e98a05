/**
 * Versioned schema migrations for the PostgreSQL store. Each entry moves the schema one version up;
 * `pipe_meta.schema_version` records where a database stands. Never edit a shipped migration: add one.
 *
 * Every table is prefixed `pipe_`, so the state may live in a database other applications use.
 * Times compared against leases are `timestamptz` set from the database clock, so workers on
 * machines whose clocks disagree still agree on who holds what. Tokens (worker registrations,
 * artifact and stream claims) all come from one sequence, so a later claim always carries a larger
 * token than an earlier one.
 *
 * The three steps that must be one transaction with few round trips are functions: `pipe_commit`
 * (the commit point: fencing checks, chunks, row errors, positions, artifacts), `pipe_renew` (a
 * worker's heartbeat with every claim it holds) and `pipe_release`. They take row locks in one
 * order — the worker row, then artifacts by identity, then stream claims by name — so a worker's
 * heartbeat and its own commits, running on different connections, cannot deadlock.
 */

/** The advisory lock (any constant) under which migrations run: many workers starting at once apply each once. */
export const MIGRATION_LOCK = 0x7069_7065_0001;

/** Runs under the advisory lock before the versioned migrations: where the version is kept. */
export const bootstrap = 'CREATE TABLE IF NOT EXISTS pipe_meta (key text PRIMARY KEY, value text NOT NULL)';

/** SQLSTATE raised by the functions when a fencing check fails (mapped to PIPE_LOCK_LOST). */
export const LOCK_LOST_SQLSTATE = 'PLOST';

export const pgMigrations: readonly string[] = [
  `
  INSERT INTO pipe_meta (key, value) VALUES ('state_id', md5(random()::text || clock_timestamp()::text))
    ON CONFLICT (key) DO NOTHING;
  CREATE SEQUENCE pipe_tokens;
  CREATE TABLE pipe_artifacts (
    pipeline       text NOT NULL,
    identity       text NOT NULL,
    uri            text NOT NULL,
    size           bigint,
    status         text NOT NULL,
    position       bigint NOT NULL DEFAULT 0,
    rows           bigint NOT NULL DEFAULT 0,
    row_errors     bigint NOT NULL DEFAULT 0,
    attempts       integer NOT NULL DEFAULT 0,
    error_code     text,
    error_message  text,
    error_position jsonb,
    resume_at      jsonb,
    first_seen     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    claim_run      text,
    claim_token    bigint,
    claim_expires  timestamptz,
    PRIMARY KEY (pipeline, identity)
  );
  CREATE INDEX pipe_artifacts_by_status ON pipe_artifacts (pipeline, status, updated_at);
  CREATE INDEX pipe_artifacts_by_claim ON pipe_artifacts (pipeline, claim_run) WHERE claim_run IS NOT NULL;
  CREATE TABLE pipe_positions (
    pipeline   text NOT NULL,
    stream     text NOT NULL,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (pipeline, stream)
  );
  CREATE TABLE pipe_runs (
    run_id     text PRIMARY KEY,
    pipeline   text NOT NULL,
    command    text NOT NULL,
    pid        integer NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    artifacts  bigint,
    failed     bigint,
    rows       bigint,
    row_errors bigint,
    skipped    bigint,
    bytes      bigint,
    exit_code  integer
  );
  CREATE INDEX pipe_runs_by_pipeline ON pipe_runs (pipeline, started_at);
  CREATE TABLE pipe_chunks (
    pipeline     text NOT NULL,
    final        text NOT NULL,
    tmp          text NOT NULL,
    rows         bigint NOT NULL,
    bytes        bigint NOT NULL,
    committed_at timestamptz NOT NULL,
    PRIMARY KEY (pipeline, final)
  );
  CREATE TABLE pipe_row_errors (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pipeline text NOT NULL,
    artifact text NOT NULL,
    uri      text NOT NULL,
    position jsonb NOT NULL,
    code     text NOT NULL,
    message  text NOT NULL,
    raw      text,
    at       timestamptz NOT NULL
  );
  CREATE INDEX pipe_row_errors_by_pipeline ON pipe_row_errors (pipeline, id);
  CREATE TABLE pipe_remembered (
    pipeline   text NOT NULL,
    namespace  text NOT NULL,
    key        text NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (pipeline, namespace, key)
  );
  CREATE TABLE pipe_workers (
    token        bigint PRIMARY KEY,
    pipeline     text NOT NULL,
    run_id       text NOT NULL,
    pid          integer NOT NULL,
    host         text NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
  );
  CREATE INDEX pipe_workers_by_pipeline ON pipe_workers (pipeline, expires_at);
  CREATE TABLE pipe_stream_claims (
    pipeline   text NOT NULL,
    stream     text NOT NULL,
    run_id     text NOT NULL,
    token      bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (pipeline, stream)
  );

  -- A worker's heartbeat: extends its registration and every claim it holds, unless its lease has
  -- already run out (a worker stalled past its lease has lost its claims whether or not another
  -- worker has taken them yet). True when renewed.
  CREATE FUNCTION pipe_renew(p_pipeline text, p_worker bigint, p_lease_ms bigint) RETURNS boolean
  LANGUAGE plpgsql AS $fn$
  DECLARE
    v_run text;
    v_expires timestamptz := clock_timestamp() + p_lease_ms * interval '1 millisecond';
  BEGIN
    UPDATE pipe_workers SET heartbeat_at = clock_timestamp(), expires_at = v_expires
      WHERE pipeline = p_pipeline AND token = p_worker AND expires_at >= clock_timestamp()
      RETURNING run_id INTO v_run;
    IF NOT FOUND THEN RETURN false; END IF;
    PERFORM 1 FROM pipe_artifacts WHERE pipeline = p_pipeline AND claim_run = v_run ORDER BY identity FOR UPDATE;
    UPDATE pipe_artifacts SET claim_expires = v_expires WHERE pipeline = p_pipeline AND claim_run = v_run;
    PERFORM 1 FROM pipe_stream_claims WHERE pipeline = p_pipeline AND run_id = v_run ORDER BY stream FOR UPDATE;
    UPDATE pipe_stream_claims SET expires_at = v_expires WHERE pipeline = p_pipeline AND run_id = v_run;
    RETURN true;
  END
  $fn$;

  -- A worker leaves: its claims return at once (the artifacts stay in progress, to be resumed).
  CREATE FUNCTION pipe_release(p_pipeline text, p_worker bigint, p_run text) RETURNS void
  LANGUAGE plpgsql AS $fn$
  BEGIN
    DELETE FROM pipe_workers WHERE pipeline = p_pipeline AND token = p_worker;
    PERFORM 1 FROM pipe_artifacts WHERE pipeline = p_pipeline AND claim_run = p_run ORDER BY identity FOR UPDATE;
    UPDATE pipe_artifacts SET claim_run = NULL, claim_token = NULL, claim_expires = NULL
      WHERE pipeline = p_pipeline AND claim_run = p_run;
    PERFORM 1 FROM pipe_stream_claims WHERE pipeline = p_pipeline AND run_id = p_run ORDER BY stream FOR UPDATE;
    DELETE FROM pipe_stream_claims WHERE pipeline = p_pipeline AND run_id = p_run;
  END
  $fn$;

  -- The commit point of the delivery protocol, one transaction. Fencing first: the worker's lease
  -- is live, every artifact advanced still carries the claim token this worker was given
  -- (p_claims: identity -> token), and, when batches carry stream positions, this worker holds the
  -- streams claim with token p_streams_token. Any failure raises PLOST and changes nothing. Then,
  -- batch by batch as the SQLite store does: row errors (at most p_kept per artifact), stream
  -- positions, artifact progress (a finished artifact's claim is cleared); then the chunk files,
  -- the remembered keys (distinct, from the caller; sorted here, so concurrent commits lock them in
  -- one order), and the bound on the row error table. Stream positions arrive as JSON text, stored
  -- as given (jsonb would reorder an object's keys).
  CREATE FUNCTION pipe_commit(p_pipeline text, p_worker bigint, p_claims jsonb, p_streams_token bigint,
    p_files jsonb, p_batches jsonb, p_remember jsonb, p_kept integer, p_table_max integer) RETURNS void
  LANGUAGE plpgsql AS $fn$
  DECLARE
    v_run text;
    v_now timestamptz := clock_timestamp();
    v_held integer;
    v_lost text;
    v_kept bigint;
    b jsonb;
  BEGIN
    SELECT run_id INTO v_run FROM pipe_workers
      WHERE pipeline = p_pipeline AND token = p_worker AND expires_at > v_now FOR KEY SHARE;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'PLOST', MESSAGE = 'this worker''s lease has ended';
    END IF;
    SELECT count(*) INTO v_held FROM (
      SELECT 1 FROM pipe_artifacts a JOIN jsonb_each_text(p_claims) c ON a.identity = c.key
      WHERE a.pipeline = p_pipeline AND a.claim_token = c.value::bigint ORDER BY a.identity FOR UPDATE OF a) held;
    IF v_held <> (SELECT count(*) FROM jsonb_object_keys(p_claims)) THEN
      SELECT coalesce(a.uri, c.key) INTO v_lost FROM jsonb_each_text(p_claims) c
        LEFT JOIN pipe_artifacts a ON a.pipeline = p_pipeline AND a.identity = c.key
        WHERE a.claim_token IS DISTINCT FROM c.value::bigint ORDER BY c.key LIMIT 1;
      RAISE EXCEPTION USING ERRCODE = 'PLOST', MESSAGE = 'another worker has taken ' || v_lost;
    END IF;
    IF p_streams_token IS NOT NULL THEN
      PERFORM 1 FROM pipe_stream_claims
        WHERE pipeline = p_pipeline AND stream = 'streams' AND token = p_streams_token AND run_id = v_run FOR UPDATE;
      IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'PLOST', MESSAGE = 'another worker has taken the streams';
      END IF;
    END IF;

    FOR b IN SELECT value FROM jsonb_array_elements(p_batches) LOOP
      IF jsonb_array_length(b->'rowErrors') > 0 THEN
        SELECT row_errors INTO v_kept FROM pipe_artifacts WHERE pipeline = p_pipeline AND identity = b->>'identity';
        INSERT INTO pipe_row_errors (pipeline, artifact, uri, position, code, message, raw, at)
          SELECT p_pipeline, b->>'identity', e->>'uri', e->'position', e->>'code', e->>'message', e->>'raw', v_now
          FROM jsonb_array_elements(b->'rowErrors') WITH ORDINALITY AS t(e, n)
          WHERE coalesce(v_kept, 0) + n <= p_kept ORDER BY n;
      END IF;
      IF b ? 'streams' THEN
        -- A stream's batches move its cursor; only artifacts have a row to advance.
        INSERT INTO pipe_positions (pipeline, stream, value, updated_at)
          SELECT p_pipeline, s->>0, s->>1, v_now FROM jsonb_array_elements(b->'streams') WITH ORDINALITY AS t(s, n) ORDER BY n
          ON CONFLICT (pipeline, stream) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at;
        CONTINUE;
      END IF;
      UPDATE pipe_artifacts SET
        position = greatest(position, (b->>'position')::bigint),
        -- A safe byte offset to resume at (ArtifactState.resumeAt): moves with the position, gone once done.
        resume_at = CASE WHEN b->>'status' = 'done' THEN NULL
          WHEN b ? 'resumeAt' AND (b->>'position')::bigint >= position THEN b->'resumeAt' ELSE resume_at END,
        rows = rows + (b->>'rows')::bigint,
        row_errors = row_errors + jsonb_array_length(b->'rowErrors'),
        status = b->>'status',
        error_code = b->>'errorCode',
        error_message = b->>'errorMessage',
        error_position = b->'errorPosition',
        updated_at = v_now,
        claim_run = CASE WHEN b->>'status' = 'in_progress' THEN claim_run END,
        claim_token = CASE WHEN b->>'status' = 'in_progress' THEN claim_token END,
        claim_expires = CASE WHEN b->>'status' = 'in_progress' THEN claim_expires END
      WHERE pipeline = p_pipeline AND identity = b->>'identity';
    END LOOP;

    INSERT INTO pipe_chunks (pipeline, final, tmp, rows, bytes, committed_at)
      SELECT p_pipeline, f->>'final', f->>'tmp', (f->>'rows')::bigint, (f->>'bytes')::bigint, v_now
      FROM jsonb_array_elements(p_files) f;
    INSERT INTO pipe_remembered (pipeline, namespace, key, expires_at)
      SELECT p_pipeline, r->>0, r->>1, (r->>2)::bigint FROM jsonb_array_elements(p_remember) r ORDER BY 2, 3
      ON CONFLICT (pipeline, namespace, key) DO UPDATE SET expires_at = greatest(pipe_remembered.expires_at, excluded.expires_at);
    -- Row errors of streams have no artifact to count against: keep the table bounded overall.
    IF p_batches @? '$[*].rowErrors[0]' THEN
      DELETE FROM pipe_row_errors WHERE pipeline = p_pipeline
        AND id <= (SELECT max(id) FROM pipe_row_errors WHERE pipeline = p_pipeline) - p_table_max;
    END IF;
  END
  $fn$;
  `,
  // 2: claims are taken with FOR UPDATE SKIP LOCKED, so a claimer never queues behind a row
  // another transaction holds (a holder's commit or heartbeat): it moves on, and the object's
  // message comes back later if it is still unfinished.
  `
  CREATE FUNCTION pipe_claim(p_pipeline text, p_worker bigint, p_identity text, p_uri text, p_size bigint, p_lease_ms float8)
  RETURNS SETOF pipe_artifacts LANGUAGE plpgsql AS $fn$
  DECLARE
    v_run text;
    v_now timestamptz := clock_timestamp();
  BEGIN
    SELECT run_id INTO v_run FROM pipe_workers WHERE pipeline = p_pipeline AND token = p_worker AND expires_at > v_now;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'PLOST', MESSAGE = 'its lease has ended';
    END IF;
    INSERT INTO pipe_artifacts (pipeline, identity, uri, size, status, attempts, first_seen, updated_at)
      VALUES (p_pipeline, p_identity, p_uri, p_size, 'in_progress', 0, v_now, v_now)
      ON CONFLICT (pipeline, identity) DO NOTHING;
    RETURN QUERY
    WITH c AS (
      SELECT a.identity FROM pipe_artifacts a
      WHERE a.pipeline = p_pipeline AND a.identity = p_identity AND a.status NOT IN ('done', 'skipped')
        AND (a.claim_token IS NULL OR a.claim_expires <= v_now OR a.claim_run = v_run)
      FOR UPDATE SKIP LOCKED
    )
    UPDATE pipe_artifacts a SET status = 'in_progress', attempts = a.attempts + 1, updated_at = v_now,
      claim_run = v_run, claim_token = nextval('pipe_tokens'), claim_expires = v_now + p_lease_ms * interval '1 millisecond'
    FROM c WHERE a.pipeline = p_pipeline AND a.identity = c.identity
    RETURNING a.*;
  END
  $fn$;
  `,
];
