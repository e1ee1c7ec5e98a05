/**
 * Two pipelines sharing one fresh state file, started at the same time (two cron jobs, or
 * pipelines run side by side), must not race in the schema migration: once both read
 * `user_version = 0` outside the migration's transaction and the loser called a healthy state file
 * corrupt. Made deterministic by holding the write lock while both processes start.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

describe('concurrent first runs on one new state file', () => {
  it('both pipelines run; neither calls the state file corrupt', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'in'));
    writeFileSync(join(dir, 'in', 'a.log'), 'x\n');
    const db = new Database(join(dir, 'state.db'));
    db.pragma('journal_mode = WAL');
    db.exec('BEGIN IMMEDIATE');
    const runs = [1, 2].map((i) => {
      const file = join(dir, `p${i}.yml`);
      writeFileSync(file, `name: p${i}\nstate: ${join(dir, 'state.db')}\nsource: { type: files, path: ${join(dir, 'in')} }\nsink: { type: jsonl, dir: ${join(dir, `o${i}`)} }\n`);
      return runCli(['run', file, '--no-progress']);
    });
    setTimeout(() => {
      db.exec('ROLLBACK');
      db.close();
    }, 1500);
    const results = await Promise.all(runs);
    expect(results.map((r) => ({ code: r.code, corrupt: r.stderr.includes('PIPE_STATE_CORRUPT') }))).toEqual([{ code: 0, corrupt: false }, { code: 0, corrupt: false }]);
  });
});
