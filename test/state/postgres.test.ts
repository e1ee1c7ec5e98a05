import { inspect } from 'node:util';
import { createServer } from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PipeError } from '../../src/errors.js';
import { pgMigrations } from '../../src/state/pg-migrations.js';
import { PostgresStore } from '../../src/state/postgres.js';
import { LISTING_STREAM, STREAMS_STREAM, type Lock } from '../../src/state/store.js';
import type { ArtifactRef, Batch } from '../../src/types.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

let server: TestPostgres;
let dbs = 0;
const open: PostgresStore[] = [];

beforeAll(async () => { server = await startPostgres(); });
afterAll(async () => { await server?.stop(); });
afterEach(async () => { for (const s of open.splice(0)) await s.close(); });

const ref: ArtifactRef = { identity: 's3:b/k1:etag1', uri: 's3://b/k1', size: 10 };
const ref2: ArtifactRef = { identity: 's3:b/k2:etag2', uri: 's3://b/k2', size: 20 };
const owner = (runId: string, host = 'h1') => ({ pid: process.pid, host, runId });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function batch(position: number, rows: number, extra: Partial<Batch> = {}, artifact = ref): Batch {
  return {
    artifact, rows: Array.from({ length: rows }, (_, i) => ({ i })), rowErrors: [], position, bytes: 0, skipped: 0, filtered: 0, ...extra,
  };
}

function streamBatch(value: unknown): Batch {
  return { ...batch(0, 1), artifact: { identity: 'group/a', uri: 'cloudwatch://group/a' }, streams: { 'group/a': value } };
}

/** A fresh database on the test server; `stores(n)` opens n stores (workers) on it. */
async function database(): Promise<{ url: string; store: () => PostgresStore }> {
  const url = await server.createDb(`pipe_state_${++dbs}`);
  return {
    url,
    store: () => {
      const s = new PostgresStore(url, 'h1');
      open.push(s);
      return s;
    },
  };
}

async function claimToken(db: string, identity: string): Promise<number | null> {
  const r = await server.sql(`SELECT claim_token FROM pipe_artifacts WHERE identity = '${identity}'`, db);
  return r.rows[0]?.claim_token === null ? null : Number(r.rows[0]?.claim_token);
}

const dbName = (url: string) => new URL(url).pathname.slice(1);

describe('PostgresStore: the contract shared with SQLite', () => {
  it('commits positions, rows, failures and remembered keys in one round trip', async () => {
    const { store: make } = await database();
    const store = make();
    const lock = await store.acquireLock('p', owner('r1'), 60_000);
    expect(store.id).toMatch(/^[0-9a-f]{32}$/);
    expect((await store.startArtifact(lock, ref))!.attempts).toBe(1);
    expect(await store.claimStream(lock, STREAMS_STREAM)).toBe(true);
    const files = [{ tmp: '/t/1.tmp', final: '/o/1.jsonl', rows: 3, bytes: 30 }];
    const before = store.roundTrips;
    await store.commit(lock, files, [
      batch(3, 3, {
        remember: [{ namespace: 'd', key: 'k1', expiresAt: Date.now() + 60_000 }, { namespace: 'd', key: 'old', expiresAt: Date.now() - 1 }],
        rowErrors: [{ artifact: ref.identity, uri: ref.uri, position: { row: 2 }, code: 'PIPE_ROW_INVALID', message: 'bad' }],
      }),
      // A stream's batch moves its cursor and leaves artifacts alone; its value is kept as written.
      streamBatch({ t: 5, a: [1, 2], id: 'x' }),
    ]);
    expect(store.roundTrips - before, 'a commit is one round trip').toBe(1);
    expect(await store.pendingChunks('p')).toEqual(files);
    await store.finishChunks('p', files);
    expect(await store.pendingChunks('p')).toEqual([]);
    let a = (await store.artifact('p', ref.identity))!;
    expect(a).toMatchObject({ status: 'in_progress', position: 3, rows: 3, rowErrors: 1 });
    expect([...(await store.rememberedKeys('p', 'd', Date.now())).keys()]).toEqual(['k1']);
    expect(JSON.stringify(await store.position('p', 'group/a'))).toBe('{"t":5,"a":[1,2],"id":"x"}');
    const failure = new PipeError('PIPE_ARTIFACT_CORRUPT', 'unexpected end', { position: { row: 7, byte: 99 } });
    await store.commit(lock, [], [batch(7, 4, { failed: failure })]);
    a = (await store.artifact('p', ref.identity))!;
    expect(a).toMatchObject({ status: 'failed', position: 7, rows: 7, errorCode: 'PIPE_ARTIFACT_CORRUPT', errorPosition: { row: 7, byte: 99 } });
    // --retry-failed: a failed artifact can be claimed again.
    const retried = await store.startArtifact(lock, ref);
    expect(retried).toMatchObject({ status: 'in_progress', position: 7, attempts: 2 });
    expect(retried!.errorCode).toBe('PIPE_ARTIFACT_CORRUPT');
    await store.commit(lock, [], [batch(8, 1), batch(9, 1, { done: true })]);
    a = (await store.artifact('p', ref.identity))!;
    expect(a).toMatchObject({ status: 'done', position: 9, rows: 9 });
    expect(a.errorCode).toBeUndefined();
    const status = await store.status('p');
    expect(status.artifacts).toEqual({ done: 1, failed: 0, inProgress: 0, skipped: 0 });
    expect(status.rowErrors[0]).toMatchObject({ code: 'PIPE_ROW_INVALID', position: { row: 2 }, uri: ref.uri });
    expect(status.positions).toEqual([{ stream: 'group/a', value: { t: 5, a: [1, 2], id: 'x' }, updatedAt: expect.any(String) }]);
    expect(status.lock).toBeUndefined();
    expect(status.workers).toEqual([expect.objectContaining({ owner: owner('r1'), claims: [STREAMS_STREAM] })]);
  });

  it('keeps the resume point with the position, and drops it once done', async () => {
    const { store: make } = await database();
    const store = make();
    const lock = await store.acquireLock('p', owner('r1'), 60_000);
    expect((await store.startArtifact(lock, ref))!.resumeAt).toBeUndefined();
    await store.commit(lock, [], [batch(10, 10, { resumeAt: { byte: 300, record: 10, head: 'version srcaddr' } })]);
    expect((await store.artifact('p', ref.identity))!.resumeAt).toEqual({ byte: 300, record: 10, head: 'version srcaddr' });
    await store.commit(lock, [], [batch(12, 2, { resumeAt: { byte: 360, record: 12 } }), batch(15, 3, { resumeAt: { byte: 450, record: 15 } })]);
    // A batch past the last boundary carries none: the point stays.
    await store.commit(lock, [], [batch(17, 2)]);
    expect((await store.artifact('p', ref.identity))!).toMatchObject({ position: 17, resumeAt: { byte: 450, record: 15 } });
    await store.releaseLock(lock);
    const other = make();
    const lock2 = await other.acquireLock('p', owner('r2'), 60_000);
    expect(await other.startArtifact(lock2, ref)).toMatchObject({ position: 17, attempts: 2, resumeAt: { byte: 450, record: 15 } });
    await other.commit(lock2, [], [batch(20, 3, { done: true, resumeAt: { byte: 600, record: 20 } })]);
    const done = (await other.artifact('p', ref.identity))!;
    expect(done.status).toBe('done');
    expect(done.resumeAt).toBeUndefined();
  });

  it('keeps at most 100 row errors per artifact', async () => {
    const { store: make, url } = await database();
    const store = make();
    const lock = await store.acquireLock('p', owner('r1'), 60_000);
    await store.startArtifact(lock, ref);
    const errors = (n: number) => Array.from({ length: n }, (_, i) => ({ artifact: ref.identity, uri: ref.uri, position: { row: i }, code: 'PIPE_ROW_INVALID', message: `bad ${i}` }));
    await store.commit(lock, [], [batch(60, 0, { rowErrors: errors(60) }), batch(120, 0, { rowErrors: errors(60) })]);
    await store.commit(lock, [], [batch(130, 0, { rowErrors: errors(10) })]);
    const kept = await server.sql('SELECT count(*)::int AS n FROM pipe_row_errors', dbName(url));
    expect(kept.rows[0].n).toBe(100);
    expect((await store.artifact('p', ref.identity))!.rowErrors).toBe(130);
  });

  it('keeps pipelines apart', async () => {
    const { store: make } = await database();
    const store = make();
    const lock = await store.acquireLock('a', owner('r1'), 60_000);
    const other = await store.acquireLock('b', owner('r2'), 60_000);
    await store.startArtifact(lock, ref);
    await store.commit(lock, [{ tmp: '/t/a', final: '/o/a', rows: 1, bytes: 1 }], [batch(1, 1, { done: true })]);
    expect(await store.artifact('b', ref.identity)).toBeUndefined();
    expect((await store.status('a')).artifacts.done).toBe(1);
    expect(await store.pendingChunks('b')).toEqual([]);
    expect([...await store.liveRuns('b')]).toEqual(['r2']);
    // Another pipeline's worker can claim the same identity: claims are per pipeline.
    expect(await store.startArtifact(other, ref)).toMatchObject({ status: 'in_progress', attempts: 1 });
    expect(await store.claimStream(other, LISTING_STREAM)).toBe(true);
    expect(await store.claimStream(lock, LISTING_STREAM)).toBe(true);
  });

  it('records runs and skipped artifacts', async () => {
    const { store: make } = await database();
    const store = make();
    const started = new Date().toISOString();
    await store.beginRun('p', { runId: 'r1', command: 'run', startedAt: started, pid: 1 });
    await store.endRun('p', 'r1', { artifacts: 2, failed: 1, rows: 10, rowErrors: 0, skipped: 0, bytes: 100, exitCode: 1 });
    await store.skipArtifact('p', ref, 'vanished');
    const s = await store.status('p');
    expect(s.runs[0]).toMatchObject({ runId: 'r1', startedAt: started, rows: 10, exitCode: 1, endedAt: expect.any(String) });
    expect(s.artifacts.skipped).toBe(1);
    expect(s.skipped[0]).toMatchObject({ uri: ref.uri, errorMessage: 'vanished' });
    // A skipped artifact is finished: nobody claims it.
    const lock = await store.acquireLock('p', owner('r2'), 60_000);
    expect(await store.startArtifact(lock, ref)).toBeUndefined();
  });

  it('applies migrations once when five stores open a new database at once', async () => {
    const { store: make, url } = await database();
    const stores = Array.from({ length: 5 }, make);
    const locks = await Promise.all(stores.map((s, i) => s.acquireLock('p', owner(`r${i}`), 60_000)));
    expect(new Set(stores.map((s) => s.id)).size).toBe(1);
    expect(new Set(locks.map((l) => l.token)).size).toBe(5);
    const meta = await server.sql('SELECT key, value FROM pipe_meta ORDER BY key', dbName(url));
    expect(meta.rows).toEqual([{ key: 'schema_version', value: String(pgMigrations.length) }, { key: 'state_id', value: stores[0]!.id }]);
    // A store opened later finds the schema current and does not take the migration lock.
    const late = make();
    await late.liveRuns('p');
    expect(late.id).toBe(stores[0]!.id);
    expect(late.roundTrips).toBe(2);
  });
});

describe('PostgresStore: shared mode', () => {
  it('gives an artifact to exactly one of two workers starting it at once', async () => {
    const { store: make } = await database();
    const [s1, s2] = [make(), make()];
    const [w1, w2] = await Promise.all([s1.acquireLock('p', owner('r1'), 60_000), s2.acquireLock('p', owner('r2', 'h2'), 60_000)]);
    expect(w2.token).not.toBe(w1.token);
    for (let i = 0; i < 20; i++) {
      const r = { identity: `k${i}`, uri: `s3://b/k${i}` };
      const got = await Promise.all([s1.startArtifact(w1, r), s2.startArtifact(w2, r)]);
      expect(got.filter(Boolean)).toHaveLength(1);
      expect(got.find(Boolean)).toMatchObject({ status: 'in_progress', attempts: 1 });
    }
  });

  it('skips an artifact whose row another transaction holds (FOR UPDATE SKIP LOCKED) instead of waiting', async () => {
    const { store: make, url } = await database();
    const store = make();
    const lock = await store.acquireLock('p', owner('r1'), 60_000);
    const first = make();
    const firstLock = await first.acquireLock('p', owner('r0'), 60_000);
    await first.startArtifact(firstLock, ref);
    await first.releaseLock(firstLock);
    // Another session holds the (now unclaimed) row, as a commit in flight would.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM pipe_artifacts WHERE identity = $1 FOR UPDATE', [ref.identity]);
      // It answers while the lock is still held: a claimer that waited would block until COMMIT,
      // which only comes after it returns (or fail with the lock timeout).
      expect(await store.startArtifact(lock, ref)).toBeUndefined();
      await holder.query('COMMIT');
      expect(await store.startArtifact(lock, ref)).toMatchObject({ status: 'in_progress', attempts: 2 });
    } finally {
      await holder.end();
    }
  });

  it('lets another worker take a claim whose lease ran out, and fences the first one off', async () => {
    const { store: make, url } = await database();
    const [s1, s2] = [make(), make()];
    const w1 = await s1.acquireLock('p', owner('r1'), 1000);
    expect(await s1.startArtifact(w1, ref)).toBeDefined();
    expect(await s1.claimStream(w1, STREAMS_STREAM)).toBe(true);
    await s1.commit(w1, [], [batch(2, 2)]);
    const first = await claimToken(dbName(url), ref.identity);
    const w2 = await s2.acquireLock('p', owner('r2', 'h2'), 60_000);
    expect(await s2.startArtifact(w2, ref), 'a live claim is not taken').toBeUndefined();
    await sleep(1100);
    const taken = await s2.startArtifact(w2, ref);
    expect(taken).toMatchObject({ status: 'in_progress', position: 2, attempts: 2 });
    expect(await claimToken(dbName(url), ref.identity)).toBeGreaterThan(first!);
    expect(await s2.claimStream(w2, STREAMS_STREAM)).toBe(true);
    // The first worker wakes up: it can neither commit nor renew, and its commit changed nothing.
    const files = [{ tmp: '/t/late', final: '/o/late', rows: 5, bytes: 50 }];
    await expect(s1.commit(w1, files, [
      batch(7, 5, { remember: [{ namespace: 'd', key: 'late', expiresAt: Date.now() + 60_000 }], rowErrors: [{ artifact: ref.identity, uri: ref.uri, position: { row: 1 }, code: 'X', message: 'x' }] }),
      streamBatch({ t: 9 }),
    ])).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    await expect(s1.renewLock(w1)).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    await expect(s1.startArtifact(w1, ref2)).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    expect(await s2.artifact('p', ref.identity)).toMatchObject({ position: 2, rows: 2, rowErrors: 0 });
    expect(await s2.pendingChunks('p')).toEqual([]);
    expect(await s2.position('p', 'group/a')).toBeUndefined();
    expect((await s2.rememberedKeys('p', 'd', Date.now())).size).toBe(0);
    expect([...await s2.liveRuns('p')]).toEqual(['r2']);
    await s2.commit(w2, [], [batch(4, 2, { done: true })]);
    expect(await s2.artifact('p', ref.identity)).toMatchObject({ status: 'done', position: 4, rows: 4 });
  });

  it('refuses the commit of a live worker whose claim was taken, changing nothing', async () => {
    const { store: make, url } = await database();
    const [s1, s2] = [make(), make()];
    const w1 = await s1.acquireLock('p', owner('r1'), 60_000);
    const w2 = await s2.acquireLock('p', owner('r2'), 60_000);
    await s1.startArtifact(w1, ref);
    await s1.startArtifact(w1, ref2);
    // As if this claim alone had lapsed (a worker that renewed only just too late).
    await server.sql(`UPDATE pipe_artifacts SET claim_expires = now() - interval '1 second' WHERE identity = '${ref2.identity}'`, dbName(url));
    expect(await s2.startArtifact(w2, ref2)).toBeDefined();
    const files = [{ tmp: '/t/1', final: '/o/1', rows: 2, bytes: 2 }];
    const err = await s1.commit(w1, files, [batch(1, 1), batch(1, 1, {}, ref2)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipeError);
    expect(err).toMatchObject({ code: 'PIPE_LOCK_LOST', message: expect.stringContaining(ref2.uri) });
    expect(await s1.artifact('p', ref.identity)).toMatchObject({ position: 0, rows: 0 });
    expect(await s1.pendingChunks('p')).toEqual([]);
    // What it still holds, it may still commit.
    await s1.commit(w1, files, [batch(1, 1)]);
    expect(await s1.artifact('p', ref.identity)).toMatchObject({ position: 1, rows: 1 });
  });

  it('never claims a finished artifact again, and clears the claim of a finished one', async () => {
    const { store: make, url } = await database();
    const [s1, s2] = [make(), make()];
    const w1 = await s1.acquireLock('p', owner('r1'), 60_000);
    const w2 = await s2.acquireLock('p', owner('r2'), 60_000);
    await s1.startArtifact(w1, ref);
    await s1.startArtifact(w1, ref2);
    await s1.commit(w1, [], [batch(3, 3, { done: true }), batch(1, 0, { vanished: new PipeError('PIPE_ARTIFACT_NOT_FOUND', 'gone') }, ref2)]);
    expect(await claimToken(dbName(url), ref.identity)).toBeNull();
    expect(await s2.startArtifact(w2, ref)).toBeUndefined();
    expect(await s1.startArtifact(w1, ref)).toBeUndefined();
    expect(await s2.startArtifact(w2, ref2)).toBeUndefined();
    expect(await s1.artifact('p', ref2.identity)).toMatchObject({ status: 'skipped', errorCode: 'PIPE_ARTIFACT_NOT_FOUND' });
    expect((await s1.status('p')).workers!.every((w) => w.claims.length === 0)).toBe(true);
    // A commit naming an artifact this worker no longer holds is refused.
    await expect(s1.commit(w1, [], [batch(4, 1)])).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
  });

  it('grants each stream claim to one live worker, extends it for its holder, hands it over after the lease', async () => {
    const { store: make } = await database();
    const [s1, s2] = [make(), make()];
    const w1 = await s1.acquireLock('p', owner('r1'), 1000);
    const w2 = await s2.acquireLock('p', owner('r2'), 60_000);
    expect(await s1.claimStream(w1, LISTING_STREAM)).toBe(true);
    expect(await s2.claimStream(w2, LISTING_STREAM)).toBe(false);
    expect(await s2.claimStream(w2, STREAMS_STREAM)).toBe(true);
    expect(await s1.claimStream(w1, STREAMS_STREAM)).toBe(false);
    expect(await s1.claimStream(w1, LISTING_STREAM), 'its holder keeps it').toBe(true);
    await s1.setPosition(w1, 's3:listing', { after: 'k1' });
    expect(await s2.position('p', 's3:listing')).toEqual({ after: 'k1' });
    // Renewed with the worker: still held past the first lease.
    await sleep(500);
    await s1.renewLock(w1);
    await sleep(700);
    expect(await s2.claimStream(w2, LISTING_STREAM)).toBe(false);
    await sleep(1100);
    expect(await s2.claimStream(w2, LISTING_STREAM)).toBe(true);
    await expect(s1.setPosition(w1, 's3:listing', { after: 'k9' })).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    await expect(s1.claimStream(w1, LISTING_STREAM)).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    await s2.setPosition(w2, 's3:listing', { after: 'k2' });
    expect(await s1.position('p', 's3:listing')).toEqual({ after: 'k2' });
  });

  it('removes a position set to undefined, and lists streams by prefix', async () => {
    const { store: make } = await database();
    const [s1, s2] = [make(), make()];
    const w1 = await s1.acquireLock('p', owner('r1'), 60_000);
    const w2 = await s2.acquireLock('p', owner('r2'), 60_000);
    expect(await s1.claimStream(w1, LISTING_STREAM)).toBe(true);
    for (const stream of ['tail', 'tail:a', 'tail:b', 'tail_x', 'other']) await s1.setPosition(w1, stream, { s: stream });
    const other = await s1.acquireLock('q', owner('r1'), 60_000);
    expect(await s1.claimStream(other, LISTING_STREAM)).toBe(true);
    await s1.setPosition(other, 'tail:c', 1);
    expect(await s2.positionStreams('p', 'tail:')).toEqual(['tail:a', 'tail:b']);
    await expect(s2.setPosition(w2, 'tail:a', undefined), 'only the listing holder').rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    await s1.setPosition(w1, 'tail:a', undefined);
    await s1.setPosition(w1, 'tail:gone', undefined);
    expect(await s2.position('p', 'tail:a')).toBeUndefined();
    expect(await s2.positionStreams('p', 'tail:')).toEqual(['tail:b']);
    expect(await s2.positionStreams('q', 'tail:')).toEqual(['tail:c']);
  });

  it('refuses setPosition without the listing claim and stream positions without the streams claim', async () => {
    const { store: make } = await database();
    const [s1, s2] = [make(), make()];
    const w1 = await s1.acquireLock('p', owner('r1'), 60_000);
    const w2 = await s2.acquireLock('p', owner('r2'), 60_000);
    await expect(s1.setPosition(w1, 's3:listing', 1)).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    await expect(s1.commit(w1, [], [streamBatch({ t: 1 })])).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    expect(await s2.claimStream(w2, LISTING_STREAM)).toBe(true);
    expect(await s2.claimStream(w2, STREAMS_STREAM)).toBe(true);
    await expect(s1.setPosition(w1, 's3:listing', 1)).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    await expect(s1.commit(w1, [], [streamBatch({ t: 1 })])).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    expect(await s1.position('p', 's3:listing')).toBeUndefined();
    expect(await s1.position('p', 'group/a')).toBeUndefined();
    await s2.commit(w2, [], [streamBatch({ t: 2 })]);
    expect(await s1.position('p', 'group/a')).toEqual({ t: 2 });
  });

  it('shows live workers with their claims and heartbeats, and releases claims at once', async () => {
    const { store: make } = await database();
    const [s1, s2] = [make(), make()];
    const w1 = await s1.acquireLock('p', owner('r1'), 60_000);
    const w2 = await s2.acquireLock('p', owner('r2', 'h2'), 60_000);
    await s1.startArtifact(w1, ref2);
    await s1.startArtifact(w1, ref);
    await s1.claimStream(w1, LISTING_STREAM);
    expect(await s2.liveRuns('p')).toEqual(new Set(['r1', 'r2']));
    let workers = (await s2.status('p')).workers!;
    expect(workers.map((w) => [w.owner.runId, w.owner.host, w.claims])).toEqual([
      ['r1', 'h1', [ref.uri, ref2.uri, LISTING_STREAM]],
      ['r2', 'h2', []],
    ]);
    const beat = workers[0]!.heartbeatAt;
    expect(Date.parse(workers[0]!.expiresAt) - Date.parse(beat)).toBeGreaterThanOrEqual(59_000);
    await sleep(20);
    await s1.renewLock(w1);
    workers = (await s2.status('p')).workers!;
    expect(Date.parse(workers[0]!.heartbeatAt)).toBeGreaterThan(Date.parse(beat));
    await s1.releaseLock(w1);
    expect(await s2.liveRuns('p')).toEqual(new Set(['r2']));
    expect((await s2.status('p')).workers!.map((w) => w.owner.runId)).toEqual(['r2']);
    expect(await s2.startArtifact(w2, ref)).toMatchObject({ attempts: 2 });
    expect(await s2.claimStream(w2, LISTING_STREAM)).toBe(true);
    expect((await s2.status('p')).workers![0]!.claims).toEqual([ref.uri, LISTING_STREAM]);
    await expect(s1.renewLock(w1)).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
  });

  it('renews while committing on other connections without deadlocks', async () => {
    const { store: make } = await database();
    const store = make();
    const lock = await store.acquireLock('p', owner('r1'), 60_000);
    const refs = Array.from({ length: 30 }, (_, i) => ({ identity: `id${String(i).padStart(2, '0')}`, uri: `s3://b/${i}` }));
    for (const r of refs) await store.startArtifact(lock, r);
    let stop = false;
    const renewing = (async () => { while (!stop) await store.renewLock(lock); })();
    const commits = Array.from({ length: 3 }, async (_, c) => {
      for (let n = 1; n <= 15; n++) {
        const mine = refs.filter((_, i) => i % 3 === c).reverse();
        await store.commit(lock, [], mine.map((r) => batch(n, 1, { remember: [{ namespace: 'd', key: `k${n % 4}`, expiresAt: Date.now() + n }] }, r)));
      }
    });
    await Promise.all(commits);
    stop = true;
    await renewing;
    expect(await store.artifact('p', 'id00')).toMatchObject({ position: 15, rows: 15 });
  });
});

describe('PostgresStore: connection problems', () => {
  function expectNoSecret(err: unknown, secret: string): void {
    expect(err).toBeInstanceOf(PipeError);
    const e = err as PipeError;
    expect(e.message).not.toContain(secret);
    expect(inspect(e, { depth: 10, showHidden: true })).not.toContain(secret);
    expect(JSON.stringify({ ...e, message: e.message, stack: e.stack })).not.toContain(secret);
    expect(e.stack ?? '').not.toContain(secret);
  }

  it('masks the password in location, and works with the right one', async () => {
    const url = await server.createDb(`pipe_state_${++dbs}`);
    const store = new PostgresStore(server.passwordUrl(dbName(url)), 'h1');
    open.push(store);
    expect(store.location).toBe(server.passwordUrl(dbName(url)).replace(server.password, '***'));
    expect(store.location).not.toContain(server.password);
    const lock = await store.acquireLock('p', owner('r1'), 60_000);
    expect(await store.startArtifact(lock, ref)).toBeDefined();
    expect(JSON.stringify(await store.status('p'))).not.toContain(server.password);
  });

  it('reports a wrong password as PIPE_STATE_UNAVAILABLE without the password', async () => {
    const secret = 'Wr0ngSecretValue123';
    const url = server.passwordUrl().replace(server.password, secret);
    const store = new PostgresStore(url, 'h1');
    open.push(store);
    const err = await store.acquireLock('p', owner('r1'), 60_000).catch((e: unknown) => e);
    expectNoSecret(err, secret);
    expect(err).toMatchObject({ code: 'PIPE_STATE_UNAVAILABLE', message: expect.stringContaining('password authentication failed') });
    expect((err as Error).message).toContain(store.location);
    // Every method reports the same way, and the next call tries again.
    await expect(store.status('p')).rejects.toMatchObject({ code: 'PIPE_STATE_UNAVAILABLE' });
  });

  it('reports a refused connection as PIPE_STATE_UNAVAILABLE naming the masked URL', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const secret = 's3cr3t%2Fpass';
    const store = new PostgresStore(`postgres://pipe:${secret}@127.0.0.1:${port}/pipe`, 'h1');
    open.push(store);
    expect(store.location).toBe(`postgres://pipe:***@127.0.0.1:${port}/pipe`);
    const err = await store.liveRuns('p').catch((e: unknown) => e);
    expectNoSecret(err, secret);
    expectNoSecret(err, 's3cr3t/pass');
    expect(err).toMatchObject({ code: 'PIPE_STATE_UNAVAILABLE', message: expect.stringContaining(`postgres://pipe:***@127.0.0.1:${port}/pipe`) });
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });

  it('reports a missing database as PIPE_STATE_UNAVAILABLE', async () => {
    const store = new PostgresStore(server.url('no_such_db'), 'h1');
    open.push(store);
    await expect(store.liveRuns('p')).rejects.toMatchObject({ code: 'PIPE_STATE_UNAVAILABLE', message: expect.stringContaining('no_such_db') });
  });
});

// Referenced so the type import stays checked against the store's exports.
export type _Lock = Lock;
