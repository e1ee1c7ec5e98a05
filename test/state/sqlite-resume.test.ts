/** The resume point of a half-read artifact in the SQLite store: committed with its position, and migration 3. */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { migrations } from '../../src/state/migrations.js';
import { SqliteStore } from '../../src/state/sqlite.js';
import type { ArtifactRef, Batch } from '../../src/types.js';
import { tempDir } from '../helpers/tmp.js';

const ref: ArtifactRef = { identity: 's3:b/k:e:100', uri: 's3://b/k', size: 100 };
const owner = { pid: process.pid, host: 'h1', runId: 'r1' };

function batch(position: number, extra: Partial<Batch> = {}): Batch {
  return { artifact: ref, rows: [], rowErrors: [], position, bytes: 0, skipped: 0, filtered: 0, ...extra };
}

describe('SqliteStore resume points', () => {
  it('moves with the position, stays while batches carry none, and is dropped once done', async () => {
    const store = new SqliteStore(join(tempDir('rng-'), 's.db'), 'h1');
    const lock = await store.acquireLock('p', owner, 60_000);
    expect((await store.startArtifact(lock, ref)).resumeAt).toBeUndefined();
    await store.commit(lock, [], [batch(10, { resumeAt: { byte: 300, record: 10, head: 'version srcaddr' } })]);
    expect((await store.artifact('p', ref.identity))!.resumeAt).toEqual({ byte: 300, record: 10, head: 'version srcaddr' });
    // Two batches in one commit: the later one wins.
    await store.commit(lock, [], [batch(12, { resumeAt: { byte: 360, record: 12 } }), batch(15, { resumeAt: { byte: 450, record: 15 } })]);
    expect((await store.artifact('p', ref.identity))!).toMatchObject({ position: 15, resumeAt: { byte: 450, record: 15 } });
    // An interrupted batch past the last boundary: the point stays (still at or before the position).
    await store.commit(lock, [], [batch(17)]);
    expect((await store.artifact('p', ref.identity))!).toMatchObject({ position: 17, resumeAt: { byte: 450, record: 15 } });
    const resumed = await store.startArtifact(lock, ref);
    expect(resumed).toMatchObject({ position: 17, attempts: 2, resumeAt: { byte: 450, record: 15 } });
    await store.commit(lock, [], [batch(20, { done: true, resumeAt: { byte: 600, record: 20 } })]);
    const done = (await store.artifact('p', ref.identity))!;
    expect(done.status).toBe('done');
    expect(done.resumeAt).toBeUndefined();
    await store.close();
  });

  it('migrates a version 2 state file, keeping its artifacts (resumed from byte 0)', async () => {
    const file = join(tempDir('rng-'), 's.db');
    const old = new Database(file);
    for (const m of migrations.slice(0, 2)) old.exec(m);
    old.pragma('user_version = 2');
    old.prepare(`INSERT INTO artifacts (pipeline, identity, uri, status, position, first_seen, updated_at)
      VALUES ('p', ?, ?, 'in_progress', 42, 'x', 'x')`).run(ref.identity, ref.uri);
    old.close();

    const store = new SqliteStore(file, 'h1');
    const a = (await store.artifact('p', ref.identity))!;
    expect(a).toMatchObject({ status: 'in_progress', position: 42 });
    expect(a.resumeAt).toBeUndefined();
    await store.close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(migrations.length);
    expect((db.prepare('PRAGMA table_info(artifacts)').all() as Array<{ name: string }>).map((c) => c.name)).toContain('resume_at');
    db.close();
  });
});
