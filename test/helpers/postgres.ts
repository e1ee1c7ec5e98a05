/**
 * A real PostgreSQL server for tests, started from the Debian packages (`apt-get install postgresql`,
 * which `.ci/run` does): the binaries are found under /usr/lib/postgresql/<version>/bin (the newest
 * version wins; PIPE_TEST_PG_BIN overrides), so they need not be on PATH.
 *
 *   const pg = await startPostgres();          // in beforeAll: initdb + pg_ctl start, ~1-2 s
 *   const url = await pg.createDb('cli_a');    // a fresh database, unique on this server
 *   ... new PostgresStore(url, 'h1') / `--state ${url}` ...
 *   await pg.stop();                           // in afterAll: pg_ctl stop -m immediate, rm -rf
 *
 * Each test file starts its own server (its own temporary directory, unix socket and free port on
 * 127.0.0.1), so files run in parallel without sharing anything. Two roles exist: `postgres`
 * (superuser, trusted, no password) and `pipe` (a random password, `password`, checked with
 * scram-sha-256 on 127.0.0.1), which owns every database made by `createDb`, so either URL can create the schema.
 * As root (CI), initdb and the server run as the unprivileged `postgres` user through runuser,
 * because initdb refuses root; otherwise as the current user.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface TestPostgres {
  host: string;
  port: number;
  /** A trusted superuser URL (no password) for a database (default `postgres`). */
  url(db?: string): string;
  /** The password of the `pipe` role: tests assert it never shows. */
  password: string;
  /** A URL that logs in as `pipe` with its password, for a database (default `postgres`). */
  passwordUrl(db?: string): string;
  /** Creates a database owned by `pipe` (name: letters, digits, `_`) and returns its superuser URL. */
  createDb(name: string): Promise<string>;
  /** Runs SQL as the superuser on a database (default `postgres`). */
  sql(text: string, db?: string): Promise<pg.QueryResult>;
  stop(): Promise<void>;
}

/** The directory of initdb and pg_ctl: PIPE_TEST_PG_BIN, else the newest /usr/lib/postgresql/<v>/bin. */
export function postgresBin(): string | undefined {
  const override = process.env.PIPE_TEST_PG_BIN;
  if (override) return override;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return versions.length ? join(root, versions[0]!, 'bin') : undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

const PASSWORD_ROLE = 'pipe';

export async function startPostgres(): Promise<TestPostgres> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL binaries not found under /usr/lib/postgresql/*/bin: apt-get install postgresql (or set PIPE_TEST_PG_BIN)');
  const asRoot = process.getuid?.() === 0;
  // Random, so a test can look for it in any text: it never occurs there by chance.
  const PASSWORD = `pw${randomBytes(9).toString('hex')}`;
  const dir = mkdtempSync('/tmp/pg-test-');
  const data = join(dir, 'data');
  // As root, everything runs as `postgres`, which must own the directory.
  const exec = (cmd: string, args: string[]) => asRoot
    ? run('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { cwd: dir })
    : run(join(bin, cmd), args, { cwd: dir });
  if (asRoot) {
    const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gids = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (ids.status !== 0) throw new Error('running as root needs the unprivileged `postgres` user (apt-get install postgresql creates it)');
    chownSync(dir, Number(ids.stdout.trim()), Number(gids.stdout.trim()));
  }
  chmodSync(dir, 0o700);
  await exec('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale', 'C']);
  // First match wins: the password role must prove its password over TCP; everything else is trusted.
  writeFileSync(join(data, 'pg_hba.conf'), [
    'local all all trust',
    `host all ${PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256`,
    'host all all 127.0.0.1/32 trust',
    '',
  ].join('\n'));

  let port = 0;
  let started = false;
  for (let attempt = 0; attempt < 5 && !started; attempt++) {
    port = await freePort();
    const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
    try {
      await exec('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-o', opts, '-w', '-t', '60', 'start']);
      started = true;
    } catch (err) {
      // Another process took the port between our probe and the server's bind: try another.
      if (attempt === 4) throw err;
    }
  }

  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    const args = ['-D', data, '-m', 'immediate', '-w', 'stop'];
    if (asRoot) spawnSync('runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), ...args], { cwd: dir, stdio: 'ignore' });
    else spawnSync(join(bin, 'pg_ctl'), args, { cwd: dir, stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  // A test process that dies without its afterAll leaves no server behind.
  process.once('exit', stopNow);

  const host = '127.0.0.1';
  const url = (db = 'postgres') => `postgres://postgres@${host}:${port}/${db}`;
  const sql = async (text: string, db = 'postgres') => {
    const client = new pg.Client({ connectionString: url(db) });
    await client.connect();
    try {
      return await client.query(text);
    } finally {
      await client.end();
    }
  };
  await sql(`CREATE ROLE ${PASSWORD_ROLE} LOGIN PASSWORD '${PASSWORD}'`);
  return {
    host,
    port,
    url,
    password: PASSWORD,
    passwordUrl: (db = 'postgres') => `postgres://${PASSWORD_ROLE}:${PASSWORD}@${host}:${port}/${db}`,
    sql,
    async createDb(name) {
      if (!/^[a-z_][a-z0-9_]*$/i.test(name)) throw new Error(`database name ${name}: letters, digits and _ only`);
      await sql(`CREATE DATABASE ${name} OWNER ${PASSWORD_ROLE}`);
      return url(name);
    },
    async stop() {
      process.removeListener('exit', stopNow);
      stopNow();
    },
  };
}
