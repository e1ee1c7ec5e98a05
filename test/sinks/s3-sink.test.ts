import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdkSinkS3Api } from '../../src/sinks/s3-api.js';
import { S3Sink, type S3SinkOptions } from '../../src/sinks/s3.js';
import { SqliteStore } from '../../src/state/sqlite.js';
import type { Lock } from '../../src/state/store.js';
import type { ArtifactRef, Batch, Logger, SinkContext } from '../../src/types.js';
import { AWS_TEST_ENV, S3Proxy, startS3, type S3Server } from '../helpers/s3.js';
import { withLateWorker, withLiveRuns } from '../helpers/store.js';
import { tempDir } from '../helpers/tmp.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const ref: ArtifactRef = { identity: 'file:/x:1:1:aa', uri: 'file:///x' };
let s3: S3Server;
let proxy: S3Proxy;
let bucketNo = 0;

beforeAll(async () => {
  for (const [k, v] of Object.entries(AWS_TEST_ENV)) if (v) process.env[k] = v;
  s3 = await startS3();
  proxy = await S3Proxy.start(s3.url);
});
afterAll(async () => {
  await proxy.close();
  await s3.close();
});

async function newBucket(): Promise<string> {
  const name = `sink-${++bucketNo}`;
  await s3.createBucket(name);
  return name;
}

async function keys(bucket: string): Promise<string[]> {
  const out = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (out.Contents ?? []).map((c) => c.Key!).sort();
}

async function body(bucket: string, key: string): Promise<Buffer> {
  const out = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function lines(bucket: string, key: string): Promise<Array<Record<string, unknown>>> {
  const raw = await body(bucket, key);
  const text = key.endsWith('.gz') ? gunzipSync(raw).toString() : raw.toString();
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

interface Setup {
  bucket: string;
  dir?: string;
  runId?: string;
  store?: SqliteStore;
  opts?: Partial<S3SinkOptions>;
  live?: string[];
  /** Another worker registering just after the live runs are read. */
  late?: () => Promise<void>;
  accept?: boolean;
  endpoint?: string;
}

async function setup(s: Setup) {
  const dir = s.dir ?? tempDir('s3sink-');
  const runId = s.runId ?? 'run1';
  const store = s.store ?? new SqliteStore(join(dir, 'state.db'), 'h');
  const lock: Lock = await store.acquireLock('p', { pid: process.pid, host: 'h', runId }, 60_000);
  await store.startArtifact(lock, ref);
  const opts: S3SinkOptions = {
    bucket: s.bucket, prefix: 'lake', forcePathStyle: true, endpoint: s.endpoint ?? s3.url, region: 'us-east-1',
    maxRows: 1000, maxBytes: 1 << 30, flushInterval: 60_000, gzip: true, partition: 'none', maxAttempts: 3, timeout: 5000, ...s.opts,
  };
  const sink = new S3Sink(opts, () => sdkSinkS3Api(opts, quiet));
  const ctx: SinkContext = {
    pipeline: 'p', store: s.late ? withLateWorker(store, s.late) : s.live ? withLiveRuns(store, s.live) : store, log: quiet, baseDir: dir, runId, signal: new AbortController().signal,
    commit: (f, b) => store.commit(lock, f, b), acceptNewState: s.accept === true,
  };
  await sink.open(ctx).catch(async (err: unknown) => {
    await sink.close();
    throw err;
  });
  return { dir, store, sink, lock, ctx };
}

function batch(from: number, to: number, extra: Partial<Batch> = {}): Batch {
  const rows = [];
  for (let i = from; i < to; i++) rows.push({ _id: `id${i}`, n: i, _time: `2024-03-0${1 + (i % 2)}T0${i % 3}:00:00.000Z` });
  return { artifact: ref, rows, rowErrors: [], position: to, bytes: 0, skipped: 0, filtered: 0, ...extra };
}

describe('s3 sink', () => {
  it('commits gzip chunks named <run id>-<sequence>.jsonl.gz under the prefix, with no staging left', async () => {
    const bucket = await newBucket();
    const { sink, store } = await setup({ bucket, opts: { maxRows: 4 } });
    await sink.write(batch(0, 3));
    await sink.write(batch(3, 6));
    await sink.write(batch(6, 7, { done: true }));
    await sink.flush();
    await sink.close();
    expect((await keys(bucket)).filter((k) => !k.startsWith('lake/_pipe-tmp/p.owner'))).toEqual(['lake/run1-000000.jsonl.gz', 'lake/run1-000001.jsonl.gz']);
    const raw = await body(bucket, 'lake/run1-000000.jsonl.gz');
    expect([raw[0], raw[1]]).toEqual([0x1f, 0x8b]);
    const rows = [...await lines(bucket, 'lake/run1-000000.jsonl.gz'), ...await lines(bucket, 'lake/run1-000001.jsonl.gz')];
    expect(rows.map((r) => r.n)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(await store.artifact('p', ref.identity)).toMatchObject({ status: 'done', position: 7, rows: 7 });
    expect(await store.pendingChunks('p')).toEqual([]);
    // The local spool of the run is gone too.
    expect(existsSync(join(tmpdir(), 'pipe-s3-sink', store.id.replace(/[^\w.-]/g, '_')))).toBe(false);
  });

  it('partitions by day, writes plain .jsonl without gzip, and row errors to _errors/ in the same chunk', async () => {
    const bucket = await newBucket();
    const { sink } = await setup({ bucket, opts: { partition: 'day', gzip: false, prefix: 'ct/' } });
    await sink.write(batch(0, 4, { rowErrors: [{ artifact: ref.identity, uri: ref.uri, position: { row: 2 }, code: 'PIPE_ROW_INVALID', message: 'bad' }] }));
    await sink.flush();
    await sink.close();
    expect((await keys(bucket)).filter((k) => !k.includes('_pipe-tmp'))).toEqual([
      'ct/_errors/run1-000000.jsonl', 'ct/dt=2024-03-01/run1-000000.jsonl', 'ct/dt=2024-03-02/run1-000000.jsonl',
    ]);
    expect((await lines(bucket, 'ct/dt=2024-03-02/run1-000000.jsonl')).map((r) => r.n)).toEqual([1, 3]);
    expect(await lines(bucket, 'ct/_errors/run1-000000.jsonl')).toMatchObject([{ code: 'PIPE_ROW_INVALID', position: { row: 2 } }]);
  });

  it('rolls forward a recorded chunk whose copy did not happen, and finishes one already published', async () => {
    const bucket = await newBucket();
    const first = await setup({ bucket });
    await first.sink.close();
    // A run that committed two chunks and was killed before publishing: one still in staging, one
    // copied and its staging deleted (killed before its record was closed).
    await s3.put(bucket, 'lake/_pipe-tmp/p/run1/run1-000000.jsonl', '{"_id":"a"}\n');
    await s3.put(bucket, 'lake/run1-000001.jsonl', '{"_id":"b"}\n');
    await first.store.commit(first.lock, [
      { tmp: `s3://${bucket}/lake/_pipe-tmp/p/run1/run1-000000.jsonl`, final: `s3://${bucket}/lake/run1-000000.jsonl`, rows: 1, bytes: 12 },
      { tmp: `s3://${bucket}/lake/_pipe-tmp/p/run1/run1-000001.jsonl`, final: `s3://${bucket}/lake/run1-000001.jsonl`, rows: 1, bytes: 12 },
    ], [batch(0, 2)]);
    await first.store.releaseLock(first.lock);
    const second = await setup({ bucket, dir: first.dir, store: first.store, runId: 'run2' });
    await second.sink.close();
    expect((await keys(bucket)).filter((k) => !k.endsWith('owner.json'))).toEqual(['lake/run1-000000.jsonl', 'lake/run1-000001.jsonl']);
    expect(await lines(bucket, 'lake/run1-000000.jsonl')).toEqual([{ _id: 'a' }]);
    expect(await first.store.pendingChunks('p')).toEqual([]);
  });

  it('discards staging objects of dead runs and keeps those of a live run', async () => {
    const bucket = await newBucket();
    await s3.put(bucket, 'lake/_pipe-tmp/p/dead1/run-a.jsonl.gz', 'x');
    await s3.put(bucket, 'lake/_pipe-tmp/p/dead2/dt_2024-03-01-b.jsonl.gz', 'x');
    await s3.put(bucket, 'lake/_pipe-tmp/p/live1/c.jsonl.gz', 'x');
    await s3.put(bucket, 'lake/_pipe-tmp/other/dead3/d.jsonl.gz', 'x');
    const { sink } = await setup({ bucket, live: ['live1'] });
    await sink.close();
    expect((await keys(bucket)).filter((k) => !k.endsWith('owner.json'))).toEqual(['lake/_pipe-tmp/other/dead3/d.jsonl.gz', 'lake/_pipe-tmp/p/live1/c.jsonl.gz']);
  });

  it('keeps the staging object and spool of a worker that registers while it looks', async () => {
    const bucket = await newBucket();
    const spool = join(tmpdir(), 'pipe-s3-sink');
    const dir = tempDir('s3sink-');
    const store = new SqliteStore(join(dir, 'state.db'), 'h');
    let late = '';
    const { sink } = await setup({
      bucket, dir, store,
      late: async () => {
        late = join(spool, store.id, 'p', 'late');
        mkdirSync(late, { recursive: true });
        writeFileSync(join(late, 'c.jsonl.gz'), 'x');
        await s3.put(bucket, 'lake/_pipe-tmp/p/late/c.jsonl.gz', 'x');
      },
    });
    await sink.close();
    expect((await keys(bucket)).filter((k) => !k.endsWith('owner.json'))).toEqual(['lake/_pipe-tmp/p/late/c.jsonl.gz']);
    expect(readdirSync(late)).toEqual(['c.jsonl.gz']);
    rmSync(late, { recursive: true, force: true });
  });

  it('refuses a prefix written with another state unless acceptNewState', async () => {
    const bucket = await newBucket();
    const a = await setup({ bucket });
    await a.sink.write(batch(0, 2, { done: true }));
    await a.sink.flush();
    await a.sink.close();
    await expect(setup({ bucket })).rejects.toMatchObject({ code: 'PIPE_STATE_MISMATCH', message: expect.stringContaining(`s3://${bucket}/lake/`) });
    const b = await setup({ bucket, accept: true });
    await b.sink.close();
    // Accepted: the prefix now belongs to the new state, and the old one is refused in turn.
    await a.store.releaseLock(a.lock);
    await expect(setup({ bucket, dir: a.dir, store: a.store, runId: 'run3' })).rejects.toMatchObject({ code: 'PIPE_STATE_MISMATCH' });
  });

  it('retries a throttled upload, and fails with PIPE_SINK_FAILED naming the key and committing nothing when faults persist', async () => {
    const bucket = await newBucket();
    proxy.reset();
    let throttled = 0;
    proxy.fault = (r) => (r.method === 'PUT' && r.key.includes('_pipe-tmp/p/run1/') && throttled++ < 2 ? { status: 503, code: 'SlowDown' } : undefined);
    const ok = await setup({ bucket, endpoint: proxy.url });
    await ok.sink.write(batch(0, 3, { done: true }));
    await ok.sink.flush();
    await ok.sink.close();
    expect(throttled).toBeGreaterThanOrEqual(2);
    expect(await lines(bucket, 'lake/run1-000000.jsonl.gz')).toHaveLength(3);

    const bucket2 = await newBucket();
    proxy.reset();
    proxy.fault = (r) => (r.method === 'PUT' && r.key.includes('_pipe-tmp/p/run1/') ? { status: 500, code: 'InternalError' } : undefined);
    const bad = await setup({ bucket: bucket2, endpoint: proxy.url });
    await bad.sink.write(batch(0, 3));
    const err = await bad.sink.flush().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'PIPE_SINK_FAILED', message: expect.stringMatching(new RegExp(`PutObject s3://${bucket2}/lake/_pipe-tmp/p/run1/run1-000000\\.jsonl\\.gz: InternalError \\(HTTP 500\\).*after 3 attempts`)) });
    await bad.sink.close();
    expect(await bad.store.artifact('p', ref.identity)).toMatchObject({ position: 0 });
    expect(await bad.store.pendingChunks('p')).toEqual([]);
    proxy.reset();
  });

  it('a copy that fails after the commit fails the run; the next run publishes the recorded chunk', async () => {
    const bucket = await newBucket();
    proxy.reset();
    proxy.fault = (r) => (r.headers['x-amz-copy-source'] ? { status: 503, code: 'SlowDown' } : undefined);
    const a = await setup({ bucket, endpoint: proxy.url });
    await a.sink.write(batch(0, 3, { done: true }));
    await expect(a.sink.flush()).rejects.toMatchObject({ code: 'PIPE_SINK_FAILED', message: expect.stringContaining(`CopyObject s3://${bucket}/lake/_pipe-tmp/p/run1/run1-000000.jsonl.gz to lake/run1-000000.jsonl.gz: SlowDown (HTTP 503)`) });
    await a.sink.close();
    // Committed: the positions moved, and the chunk waits in staging, recorded.
    expect(await a.store.artifact('p', ref.identity)).toMatchObject({ status: 'done', position: 3 });
    expect(await a.store.pendingChunks('p')).toHaveLength(1);
    proxy.reset();
    await a.store.releaseLock(a.lock);
    const b = await setup({ bucket, dir: a.dir, store: a.store, runId: 'run2' });
    await b.sink.close();
    expect((await keys(bucket)).filter((k) => !k.endsWith('owner.json'))).toEqual(['lake/run1-000000.jsonl.gz']);
    expect((await lines(bucket, 'lake/run1-000000.jsonl.gz')).map((r) => r._id)).toEqual(['id0', 'id1', 'id2']);
    expect(await a.store.pendingChunks('p')).toEqual([]);
  });
});
