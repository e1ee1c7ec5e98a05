/**
 * Versioned schema migrations for the SQLite store. Each entry moves the schema one version up;
 * `PRAGMA user_version` records where a file stands. Never edit a shipped migration: add one.
 */
export const migrations: readonly string[] = [
  `
  CREATE TABLE artifacts (
    pipeline       TEXT NOT NULL,
    identity       TEXT NOT NULL,
    uri            TEXT NOT NULL,
    size           INTEGER,
    status         TEXT NOT NULL,
    position       INTEGER NOT NULL DEFAULT 0,
    rows           INTEGER NOT NULL DEFAULT 0,
    row_errors     INTEGER NOT NULL DEFAULT 0,
    attempts       INTEGER NOT NULL DEFAULT 0,
    error_code     TEXT,
    error_message  TEXT,
    error_position TEXT,
    first_seen     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (pipeline, identity)
  ) WITHOUT ROWID;
  CREATE INDEX artifacts_by_status ON artifacts (pipeline, status);
  CREATE TABLE positions (
    pipeline   TEXT NOT NULL,
    stream     TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (pipeline, stream)
  ) WITHOUT ROWID;
  CREATE TABLE runs (
    run_id     TEXT PRIMARY KEY,
    pipeline   TEXT NOT NULL,
    command    TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    ended_at   TEXT,
    artifacts  INTEGER,
    failed     INTEGER,
    rows       INTEGER,
    row_errors INTEGER,
    skipped    INTEGER,
    bytes      INTEGER,
    exit_code  INTEGER
  );
  CREATE INDEX runs_by_pipeline ON runs (pipeline, started_at);
  CREATE TABLE locks (
    pipeline   TEXT PRIMARY KEY,
    pid        INTEGER NOT NULL,
    host       TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    token      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE TABLE chunks (
    pipeline     TEXT NOT NULL,
    final        TEXT NOT NULL,
    tmp          TEXT NOT NULL,
    rows         INTEGER NOT NULL,
    bytes        INTEGER NOT NULL,
    committed_at TEXT NOT NULL,
    PRIMARY KEY (pipeline, final)
  );
  CREATE TABLE row_errors (
    id       INTEGER PRIMARY KEY,
    pipeline TEXT NOT NULL,
    artifact TEXT NOT NULL,
    uri      TEXT NOT NULL,
    position TEXT NOT NULL,
    code     TEXT NOT NULL,
    message  TEXT NOT NULL,
    raw      TEXT,
    at       TEXT NOT NULL
  );
  CREATE INDEX row_errors_by_pipeline ON row_errors (pipeline, id);
  CREATE TABLE remembered (
    pipeline   TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (pipeline, namespace, key)
  ) WITHOUT ROWID;
  `,
  // 2: an identity for the state file itself, so a sink can tell a lost or swapped state file.
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  INSERT INTO meta (key, value) VALUES ('state_id', lower(hex(randomblob(16))));
  `,
  // 3: where a half-read artifact may be opened again instead of at byte 0 (a JSON ResumePoint:
  // byte, record, head), committed with its position; NULL re-reads from the start and skips.
  `
  ALTER TABLE artifacts ADD COLUMN resume_at TEXT;
  `,
];
