import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { JsonlSink, type JsonlSinkOptions } from '../../src/sinks/jsonl.js';
import { partitionOfTime } from '../../src/sinks/serialize.js';
import { SqliteStore } from '../../src/state/sqlite.js';
import type { Lock, StateStore } from '../../src/state/store.js';
import type { ArtifactRef, Batch, Logger, SinkContext } from '../../src/types.js';
import { withLateWorker } from '../helpers/store.js';
import { tempDir } from '../helpers/tmp.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const ref: ArtifactRef = { identity: 'file:/x:1:1:aa', uri: 'file:///x' };

function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  // The sink's own bookkeeping (temporary files, the owner record) is not output.
  return out.filter((f) => !f.startsWith('.pipe-tmp')).sort();
}

/** `wrap`: the store the sink sees, made from the real one (another worker's doings, say). */
async function setup(opts: Partial<JsonlSinkOptions> = {}, runId = 'run1', wrap?: (store: StateStore, dir: string) => StateStore) {
  const dir = tempDir();
  const store = new SqliteStore(join(dir, 'state.db'), 'h');
  const lock: Lock = await store.acquireLock('p', { pid: process.pid, host: 'h', runId }, 60_000);
  await store.startArtifact(lock, ref);
  const out = join(dir, 'out');
  const sink = new JsonlSink({ dir: out, maxRows: 1000, maxBytes: 1 << 30, flushInterval: 60_000, gzip: false, partition: 'none', ...opts });
  const ctx: SinkContext = {
    pipeline: 'p', store: wrap ? wrap(store, dir) : store, log: quiet, baseDir: dir, runId, signal: new AbortController().signal,
    commit: (f, b) => store.commit(lock, f, b),
  };
  await sink.open(ctx);
  return { dir, out, store, sink, lock, ctx };
}

function batch(from: number, to: number, extra: Partial<Batch> = {}): Batch {
  const rows = [];
  for (let i = from; i < to; i++) rows.push({ n: i, _time: `2024-03-0${1 + (i % 2)}T0${i % 3}:00:00.000Z` });
  return { artifact: ref, rows, rowErrors: [], position: to, bytes: 0, skipped: 0, filtered: 0, ...extra };
}

describe('jsonl sink', () => {
  it('rotates by maxRows and names chunks <run id>-<sequence>.jsonl', async () => {
    const { out, sink, store } = await setup({ maxRows: 4 });
    await sink.write(batch(0, 3));
    await sink.write(batch(3, 6));
    await sink.write(batch(6, 7, { done: true }));
    await sink.flush();
    await sink.close();
    expect(files(out)).toEqual(['run1-000000.jsonl', 'run1-000001.jsonl']);
    const lines = files(out).flatMap((f) => readFileSync(join(out, f), 'utf8').trim().split('\n'));
    expect(lines.map((l) => (JSON.parse(l) as { n: number }).n)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect((await store.artifact('p', ref.identity))).toMatchObject({ status: 'done', position: 7, rows: 7 });
  });

  it('partitions by day and hour of _time, and gzips', async () => {
    const { out, sink } = await setup({ partition: 'hour', gzip: true });
    await sink.write(batch(0, 6, { done: true }));
    await sink.flush();
    expect(files(out)).toEqual([
      'dt=2024-03-01/hour=00/run1-000000.jsonl.gz', 'dt=2024-03-01/hour=01/run1-000000.jsonl.gz', 'dt=2024-03-01/hour=02/run1-000000.jsonl.gz',
      'dt=2024-03-02/hour=00/run1-000000.jsonl.gz', 'dt=2024-03-02/hour=01/run1-000000.jsonl.gz', 'dt=2024-03-02/hour=02/run1-000000.jsonl.gz',
    ]);
    const first = gunzipSync(readFileSync(join(out, 'dt=2024-03-01/hour=00/run1-000000.jsonl.gz'))).toString();
    expect(JSON.parse(first.trim())).toMatchObject({ n: 0 });
    expect(partitionOfTime('2024-03-01T05:00:00.000Z', 'day')).toBe('dt=2024-03-01');
    expect(partitionOfTime('', 'day')).toBe('dt=unknown');
    // A _time that is not a time cannot name a path or key outside any sink.
    for (const t of ['..T../../../x', '2024-0\0-01T00:00:00Z', '../../etc/passwdXX']) {
      expect(partitionOfTime(t, 'day')).toBe('dt=unknown');
      expect(partitionOfTime(t, 'hour')).toBe('dt=unknown');
    }
    // Only the shape of a date (and hour) is taken from it, never the rest.
    expect(partitionOfTime('2024-03-01/../../x', 'day')).toBe('dt=2024-03-01');
    expect(partitionOfTime('2024-03-01/../../x', 'hour')).toBe('dt=unknown');
    expect(partitionOfTime('2024-03-01T05:00:00.000Z', 'hour')).toBe('dt=2024-03-01/hour=05');
  });

  it('writes row errors to _errors/ in the same chunk', async () => {
    const { out, sink } = await setup();
    await sink.write(batch(0, 1, { rowErrors: [{ artifact: ref.identity, uri: ref.uri, position: { row: 2 }, code: 'PIPE_ROW_INVALID', message: 'too few fields' }] }));
    await sink.flush();
    expect(files(out)).toEqual(['_errors/run1-000000.jsonl', 'run1-000000.jsonl']);
    expect(JSON.parse(readFileSync(join(out, '_errors/run1-000000.jsonl'), 'utf8'))).toMatchObject({ message: 'too few fields', position: { row: 2 } });
  });

  it('commits batches without rows (a done marker) with no file', async () => {
    const { out, sink, store } = await setup();
    await sink.write(batch(0, 0, { done: true, position: 3, filtered: 3 }));
    await sink.flush();
    expect(files(out)).toEqual([]);
    expect(await store.artifact('p', ref.identity)).toMatchObject({ status: 'done', position: 3 });
  });

  it('on open, rolls recorded chunks forward and discards unrecorded temporary files of runs that are gone', async () => {
    const dir = tempDir();
    const store = new SqliteStore(join(dir, 'state.db'), 'h');
    const dead = await store.acquireLock('p', { pid: process.pid, host: 'h', runId: 'r0' }, 60_000);
    await store.startArtifact(dead, ref);
    const out = join(dir, 'out');
    const tmpDir = join(out, '.pipe-tmp', 'p');
    const r0 = join(tmpDir, 'r0');
    mkdirSync(r0, { recursive: true });
    // A run that died after its commit but before the rename, with a later chunk half-written.
    writeFileSync(join(r0, 'r0-000000.jsonl.tmp'), '{"n":0}\n');
    await store.commit(dead, [{ tmp: join(r0, 'r0-000000.jsonl.tmp'), final: join(out, 'r0-000000.jsonl'), rows: 1, bytes: 8 }], [batch(0, 1)]);
    writeFileSync(join(r0, 'r0-000001.jsonl.tmp'), '{"n":1}\n{"n":2');
    // And one whose rename happened but whose confirmation did not.
    writeFileSync(join(r0, 'r0-x.tmp'), '{"n":9}\n');
    await store.commit(dead, [{ tmp: join(r0, 'r0-x.tmp'), final: join(out, 'r0-x.jsonl'), rows: 1, bytes: 8 }], []);
    renameSync(join(r0, 'r0-x.tmp'), join(out, 'r0-x.jsonl'));
    // A file of the layout before run directories.
    writeFileSync(join(tmpDir, 'old-000000.jsonl.tmp'), '{"n":3');
    await store.releaseLock(dead);

    const lock = await store.acquireLock('p', { pid: process.pid, host: 'h', runId: 'r1' }, 60_000);
    const sink = new JsonlSink({ dir: out, maxRows: 10, maxBytes: 1 << 20, flushInterval: 60_000, gzip: false, partition: 'none' });
    await sink.open({ pipeline: 'p', store, log: quiet, baseDir: dir, runId: 'r1', signal: new AbortController().signal, commit: (f, b) => store.commit(lock, f, b) });
    expect(files(out)).toEqual(['r0-000000.jsonl', 'r0-x.jsonl']);
    expect(readdirSync(tmpDir), 'only the run directory of the live run is left').toEqual(['r1']);
    expect(await store.pendingChunks('p')).toEqual([]);
    await sink.close();
  });

  it('leaves the temporary files of a live run sharing the directory alone', async () => {
    const dir = tempDir();
    const store = new SqliteStore(join(dir, 'state.db'), 'h');
    const lock = await store.acquireLock('p', { pid: process.pid, host: 'h', runId: 'live' }, 60_000);
    const out = join(dir, 'out');
    const liveDir = join(out, '.pipe-tmp', 'p', 'live');
    mkdirSync(liveDir, { recursive: true });
    writeFileSync(join(liveDir, 'live-000000.jsonl.tmp'), '{"n":1}\n');
    const sink = new JsonlSink({ dir: out, maxRows: 10, maxBytes: 1 << 20, flushInterval: 60_000, gzip: false, partition: 'none' });
    await sink.open({ pipeline: 'p', store, log: quiet, baseDir: dir, runId: 'other', signal: new AbortController().signal, commit: (f, b) => store.commit(lock, f, b) });
    expect(readdirSync(liveDir)).toEqual(['live-000000.jsonl.tmp']);
    await sink.close();
  });

  it('leaves the temporary files of a worker that registers while it looks alone', async () => {
    let lateDir = '';
    const { sink } = await setup({}, 'run1', (store, dir) => withLateWorker(store, async () => {
      lateDir = join(dir, 'out', '.pipe-tmp', 'p', 'late');
      mkdirSync(lateDir, { recursive: true });
      writeFileSync(join(lateDir, 'late-000000.jsonl.tmp'), '{"n":1}\n');
    }));
    expect(readdirSync(lateDir)).toEqual(['late-000000.jsonl.tmp']);
    await sink.close();
  });

  it('fails naming the chunk when a committed chunk file was deleted under it', async () => {
    const { out, sink } = await setup();
    // Over the 1 MiB write buffer, so the chunk file is open before its directory goes.
    await sink.write(batch(0, 2, { rows: [{ pad: 'x'.repeat(1 << 20), _time: '2024-03-01T00:00:00.000Z' }] }));
    rmSync(join(out, '.pipe-tmp', 'p', 'run1'), { recursive: true });
    await expect(sink.flush()).rejects.toMatchObject({ code: 'PIPE_SINK_FAILED', message: expect.stringContaining('run1-000000.jsonl vanished') });
    await sink.close();
  });

  it('a commit refused for a lost lock leaves no final file', async () => {
    const { out, sink, store, lock } = await setup();
    await store.releaseLock(lock);
    await store.acquireLock('p', { pid: process.pid, host: 'h', runId: 'other' }, 60_000);
    await sink.write(batch(0, 2));
    await expect(sink.flush()).rejects.toMatchObject({ code: 'PIPE_LOCK_LOST' });
    await sink.close();
    expect(files(out).filter((f) => !f.startsWith('.pipe-tmp'))).toEqual([]);
    expect(existsSync(join(out, 'run1-000000.jsonl'))).toBe(false);
  });
});

describe('jsonl sink owner record', () => {
  it('refuses a sink written with another state file unless told to accept it', async () => {
    const first = await setup();
    await first.sink.write(batch(0, 1, { done: true }));
    await first.sink.flush();
    await first.sink.close();
    const other = new SqliteStore(join(first.dir, 'other.db'), 'h');
    const lock = await other.acquireLock('p', { pid: process.pid, host: 'h', runId: 'r2' }, 60_000);
    const ctx = { ...first.ctx, store: other, commit: (f: Parameters<SinkContext['commit']>[0], b: Batch[]) => other.commit(lock, f, b) };
    const sink = new JsonlSink({ dir: first.out, maxRows: 10, maxBytes: 1 << 20, flushInterval: 60_000, gzip: false, partition: 'none' });
    await expect(sink.open(ctx)).rejects.toMatchObject({ code: 'PIPE_STATE_MISMATCH', message: expect.stringContaining('--accept-new-state') });
    await sink.open({ ...ctx, acceptNewState: true });
    await sink.close();
    // Accepted once, the new state owns the sink from then on.
    const again = new JsonlSink({ dir: first.out, maxRows: 10, maxBytes: 1 << 20, flushInterval: 60_000, gzip: false, partition: 'none' });
    await again.open(ctx);
    await again.close();
  });
});
