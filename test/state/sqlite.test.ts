import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PipeError } from '../../src/errors.js';
import { SqliteStore } from '../../src/state/sqlite.js';
import type { ArtifactRef, Batch } from '../../src/types.js';
import { tempDir } from '../helpers/tmp.js';

const ref: ArtifactRef = { identity: 'file:/a:10:1:ff', uri: 'file:///a', size: 10 };
const owner = (runId: string, pid = process.pid) => ({ pid, host: 'h1', runId });

function batch(position: number, rows: number, extra: Partial<Batch> = {}): Batch {
  return {
    artifact: ref, rows: Array.from({ length: rows }, (_, i) => ({ i })), rowErrors: [], position, bytes: 0, skipped: 0, filtered: 0, ...extra,
  };
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

describe('SqliteStore', () => {
  it('refuses a live holder with PIPE_LOCKED naming its pid, and takes over a dead one', async () => {
    const store = new SqliteStore(join(tempDir(), 's.db'), 'h1');
    const first = await store.acquireLock('p', owner('r1'), 60_000);
    await expect(store.acquireLock('p', owner('r2'), 60_000)).rejects.toMatchObject({ code: 'PIPE_LOCKED', message: expect.stringContaining(`pid ${process.pid}`) });
    await store.releaseLock(first);
    const dead = await deadPid();
    const held = await store.acquireLock('p', owner('r3', dead), 60_000);
    expect(held.takenOverFrom, 'a released lock is not taken over').toBeUndefined();
    const taken = await store.acquireLock('p', owner('r4'), 60_000);
    expect(taken.token).toBe(held.token + 1);
    expect(taken.takenOverFrom).toEqual({ owner: { pid: dead, host: 'h1', runId: 'r3' }, reason: 'dead' });
    // The run that lost the lock can neither renew nor commit.
    await expect(store.renewLock(held)).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    await store.startArtifact(taken, ref);
    await expect(store.commit(held, [], [batch(5, 5)])).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    expect((await store.artifact('p', ref.identity))!.position).toBe(0);
    await store.close();
  });

  it('does not renew a lease that has already run out', async () => {
    const store = new SqliteStore(join(tempDir(), 's.db'), 'h1');
    const lock = await store.acquireLock('p', owner('r1'), 5);
    await store.renewLock(lock);
    await new Promise((r) => setTimeout(r, 20));
    await expect(store.renewLock(lock)).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    await store.close();
  });

  it('takes over a lock whose lease has ended, even from a live pid on another host', async () => {
    const store = new SqliteStore(join(tempDir(), 's.db'), 'h1');
    await store.acquireLock('p', { pid: process.pid, host: 'elsewhere', runId: 'x' }, 1);
    await new Promise((r) => setTimeout(r, 5));
    const lock = await store.acquireLock('p', owner('r2'), 60_000);
    expect(lock.token).toBe(2);
    expect(lock.takenOverFrom).toEqual({ owner: { pid: process.pid, host: 'elsewhere', runId: 'x' }, reason: 'lease expired' });
    await store.close();
  });

  it('commits positions, rows, failures and remembered keys in one transaction', async () => {
    const store = new SqliteStore(join(tempDir(), 's.db'), 'h1');
    const lock = await store.acquireLock('p', owner('r1'), 60_000);
    expect((await store.startArtifact(lock, ref))!.attempts).toBe(1);
    const files = [{ tmp: '/t/1.tmp', final: '/o/1.jsonl', rows: 3, bytes: 30 }];
    await store.commit(lock, files, [
      batch(3, 3, {
        remember: [{ namespace: 'd', key: 'k1', expiresAt: Date.now() + 60_000 }, { namespace: 'd', key: 'old', expiresAt: Date.now() - 1 }],
        rowErrors: [{ artifact: ref.identity, uri: ref.uri, position: { row: 2 }, code: 'PIPE_ROW_INVALID', message: 'bad' }],
      }),
      // A stream's batch moves its cursor and leaves artifacts alone.
      { ...batch(99, 2), artifact: { identity: 'group/a', uri: 'cloudwatch://group/a' }, streams: { 'group/a': { t: 5 } } },
    ]);
    expect(await store.pendingChunks('p')).toEqual(files);
    await store.finishChunks('p', files);
    expect(await store.pendingChunks('p')).toEqual([]);
    let a = (await store.artifact('p', ref.identity))!;
    expect(a).toMatchObject({ status: 'in_progress', position: 3, rows: 3, rowErrors: 1 });
    expect([...(await store.rememberedKeys('p', 'd', Date.now())).keys()]).toEqual(['k1']);
    expect(await store.position('p', 'group/a')).toEqual({ t: 5 });
    const failure = new PipeError('PIPE_ARTIFACT_CORRUPT', 'unexpected end', { position: { row: 7, byte: 99 } });
    await store.commit(lock, [], [batch(7, 4, { failed: failure })]);
    a = (await store.artifact('p', ref.identity))!;
    expect(a).toMatchObject({ status: 'failed', position: 7, rows: 7, errorCode: 'PIPE_ARTIFACT_CORRUPT', errorPosition: { row: 7, byte: 99 } });
    const retried = await store.startArtifact(lock, ref);
    expect(retried).toMatchObject({ status: 'in_progress', position: 7, attempts: 2 });
    await store.commit(lock, [], [batch(9, 2, { done: true })]);
    const status = await store.status('p');
    expect(status.artifacts).toEqual({ done: 1, failed: 0, inProgress: 0, skipped: 0 });
    expect(status.rowErrors[0]).toMatchObject({ code: 'PIPE_ROW_INVALID', position: { row: 2 } });
    expect(status.positions[0]!.stream).toBe('group/a');
    expect(status.lock!.owner.runId).toBe('r1');
    await store.close();
  });

  it('removes a position set to undefined, and lists streams by prefix', async () => {
    const store = new SqliteStore(join(tempDir(), 'state.db'), 'h');
    const lock = await store.acquireLock('p', { pid: process.pid, host: 'h', runId: 'r1' }, 60_000);
    for (const stream of ['tail', 'tail:a', 'tail:b', 'tail_x', 'other']) await store.setPosition(lock, stream, { s: stream });
    const other = await store.acquireLock('q', { pid: process.pid, host: 'h', runId: 'r1' }, 60_000);
    await store.setPosition(other, 'tail:c', 1);
    expect(await store.positionStreams('p', 'tail:')).toEqual(['tail:a', 'tail:b']);
    await store.setPosition(lock, 'tail:a', undefined);
    await store.setPosition(lock, 'tail:gone', undefined);
    expect(await store.position('p', 'tail:a')).toBeUndefined();
    expect(await store.positionStreams('p', 'tail:')).toEqual(['tail:b']);
    expect(await store.positionStreams('q', 'tail:')).toEqual(['tail:c']);
    await store.releaseLock(lock);
    await store.acquireLock('p', { pid: process.pid, host: 'h', runId: 'r2' }, 60_000);
    await expect(store.setPosition(lock, 'tail:b', undefined), 'only the lock holder').rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    expect(await store.positionStreams('p', 'tail:')).toEqual(['tail:b']);
    await store.close();
  });

  it('keeps pipelines apart', async () => {
    const store = new SqliteStore(join(tempDir(), 's.db'), 'h1');
    const lock = await store.acquireLock('a', owner('r1'), 60_000);
    await store.acquireLock('b', owner('r2'), 60_000);
    await store.startArtifact(lock, ref);
    await store.commit(lock, [], [batch(1, 1, { done: true })]);
    expect(await store.artifact('b', ref.identity)).toBeUndefined();
    expect((await store.status('a')).artifacts.done).toBe(1);
    await store.close();
  });

  it('reports a file that is not a state database as PIPE_STATE_CORRUPT', () => {
    const file = join(tempDir(), 'bad.db');
    writeFileSync(file, 'this is not sqlite, just some text long enough to have a header'.repeat(20));
    expect(() => new SqliteStore(file, 'h')).toThrow(expect.objectContaining({ code: 'PIPE_STATE_CORRUPT' }));
  });

  it('records runs and skipped artifacts', async () => {
    const store = new SqliteStore(join(tempDir(), 's.db'), 'h1');
    await store.beginRun('p', { runId: 'r1', command: 'run', startedAt: new Date().toISOString(), pid: 1 });
    await store.endRun('p', 'r1', { artifacts: 2, failed: 1, rows: 10, rowErrors: 0, skipped: 0, bytes: 100, exitCode: 1 });
    await store.skipArtifact('p', ref, 'vanished');
    const s = await store.status('p');
    expect(s.runs[0]).toMatchObject({ runId: 'r1', rows: 10, exitCode: 1 });
    expect(s.artifacts.skipped).toBe(1);
    await store.close();
  });
});
