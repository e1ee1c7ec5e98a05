/**
 * Scale out (issue #11): three `pipe run` workers of one pipeline on one SQS queue of S3
 * notifications, sharing a real PostgreSQL, SIGKILLed at seeded random instants and restarted many
 * times. At the end every row is in the sink exactly once, every message is deleted and none is
 * left in flight: once into a jsonl directory all workers share, once into the s3 sink. And a
 * worker stalled past its lease (SIGSTOP) loses its object to another and cannot commit it.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, idCounts, readSink, runCli, spawnCli, type CliResult } from '../helpers/cli.js';
import { cloudTrailEvent, prng } from '../helpers/data.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { AWS_TEST_ENV, cloudTrailBody, S3Proxy, startS3, type S3Server } from '../helpers/s3.js';
import { queues, s3Notification, type Queues } from '../helpers/sqs.js';
import { CloudWatchLogsServer } from '../helpers/cloudwatch-server.js';
import { tempDir } from '../helpers/tmp.js';

let pg: TestPostgres;
let s3: S3Server;
let q: Queues;

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  q = queues(s3.url);
}, 60_000);

afterAll(async () => {
  q?.close();
  await s3?.close();
  await pg?.stop();
});

const VISIBILITY_S = 3;
const LEASE_MS = 3000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Setup {
  dir: string;
  file: string;
  env: Record<string, string>;
  queueUrl: string;
  ids: string[];
}

/** A bucket of CloudTrail objects, a queue holding one notification per object (some twice), a pipeline. */
/**
 * `jsonLines`: objects of one uncompressed event per line (loader jsonl), whose rows are committed
 * while the body is still arriving, instead of gzip CloudTrail documents.
 */
async function setup(name: string, objects: number, events: number, sink: string, s3Endpoint = s3.url, jsonLines = false): Promise<Setup> {
  const dir = tempDir();
  const bucket = `${name.replace(/_/g, '-')}-trail`;
  await s3.createBucket(bucket);
  const { url: queueUrl } = await q.create(`${name}-objects`, { VisibilityTimeout: String(VISIBILITY_S) });
  const ids: string[] = [];
  const puts: Array<{ key: string; body: Buffer }> = [];
  for (let i = 0; i < objects; i++) {
    if (jsonLines) {
      const records = Array.from({ length: events }, (_, e) => cloudTrailEvent(i, e));
      ids.push(...records.map((r) => r.eventID as string));
      puts.push({ key: `events/object ${i}=x.jsonl`, body: Buffer.from(records.map((r) => JSON.stringify(r)).join('\n') + '\n') });
      continue;
    }
    const { body, ids: eventIds } = cloudTrailBody(i, events);
    ids.push(...eventIds);
    puts.push({ key: `AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/01/object ${i}=x.json.gz`, body });
  }
  let n = 0;
  for (const o of puts) {
    const etag = await s3.put(bucket, o.key, o.body);
    await q.send(queueUrl, s3Notification(bucket, o.key, etag, o.body.length));
    // Every tenth object is notified twice: it must still be collected once.
    if (n++ % 10 === 0) await q.send(queueUrl, s3Notification(bucket, o.key, etag, o.body.length));
  }
  const state = await pg.createDb(name);
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, `name: ${name}
state: ${state}
source: { type: s3, bucket: ${bucket}, queue: "${queueUrl}", visibilityTimeout: ${VISIBILITY_S}s, maxMessages: 10, endpoint: "\${S3_ENDPOINT}", forcePathStyle: true }
${jsonLines ? 'loader: [jsonl]\n' : ''}mappers: [cloudtrail]
sink: ${sink.replace('$DIR', dir)}
`);
  const env = {
    ...AWS_TEST_ENV, S3_ENDPOINT: s3Endpoint, AWS_ENDPOINT_URL_SQS: s3.url, AWS_ENDPOINT_URL_S3: s3Endpoint,
    PIPE_LOCK_LEASE_MS: String(LEASE_MS),
  };
  return { dir, file, env, queueUrl, ids };
}

function exited(child: ChildProcess): Promise<CliResult> {
  return collect(child);
}

/**
 * Three workers; `kills` times, after a seeded random pause, one of them is SIGKILLed and a new one
 * started in its place. Then all are killed, and `--once` passes of three workers drain the queue
 * (messages of killed workers come back when their visibility timeout ends).
 */
async function chaos(s: Setup, seed: number, kills: number): Promise<{ passes: CliResult[][] }> {
  const rand = prng(seed);
  const start = (): { child: ChildProcess; done: Promise<CliResult> } => {
    const child = spawnCli(['run', s.file], { env: s.env });
    child.stdin!.end();
    return { child, done: exited(child) };
  };
  const workers = [start(), start(), start()];
  for (let k = 0; k < kills; k++) {
    await sleep(300 + rand() * 1200);
    const i = Math.floor(rand() * workers.length);
    workers[i]!.child.kill('SIGKILL');
    await workers[i]!.done;
    workers[i] = start();
  }
  for (const w of workers) w.child.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.done));
  const passes: CliResult[][] = [];
  for (let pass = 0; pass < 8; pass++) {
    passes.push(await Promise.all([0, 1, 2].map(() => runCli(['run', '--once', s.file], { env: s.env }))));
    const d = await q.depth(s.queueUrl);
    if (d.visible + d.notVisible === 0) break;
    await sleep(VISIBILITY_S * 1000);
  }
  // What killed workers left behind (temporary files, staging objects) is cleaned up by the first
  // run that starts once their leases have ended.
  await sleep(LEASE_MS + 500);
  passes.push([await runCli(['run', '--once', s.file], { env: s.env })]);
  return { passes };
}

function expectOnce(rows: Array<Record<string, unknown>>, ids: string[]): void {
  const counts = idCounts(rows);
  expect([...counts.entries()].filter(([, n]) => n !== 1), 'ids delivered more than once').toEqual([]);
  const missing = ids.filter((id) => !counts.has(id));
  expect(missing.length, 'ids never delivered').toBe(0);
  expect(counts.size).toBe(ids.length);
}

async function lakeRows(bucket: string, prefix: string): Promise<{ rows: Array<Record<string, unknown>>; staging: string[] }> {
  const rows: Array<Record<string, unknown>> = [];
  const staging: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const key = o.Key!;
      if (key.includes('_pipe-tmp/')) {
        if (!key.endsWith('.owner.json')) staging.push(key);
        continue;
      }
      if (key.includes('_errors/') || !/\.jsonl(\.gz)?$/.test(key)) continue;
      const obj = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const buf = Buffer.from(await obj.Body!.transformToByteArray());
      const text = key.endsWith('.gz') ? gunzipSync(buf).toString('utf8') : buf.toString('utf8');
      for (const line of text.split('\n')) if (line) rows.push(JSON.parse(line) as Record<string, unknown>);
    }
    token = page.NextContinuationToken;
  } while (token);
  return { rows, staging };
}

describe('three workers on one queue with shared PostgreSQL state, SIGKILLed at random', () => {
  it('into one shared jsonl directory: every row once, every message deleted, none in flight', async () => {
    const s = await setup('scale_jsonl', 240, 12, '{ type: jsonl, dir: $DIR/out, maxRows: 150, flushInterval: 150ms }');
    const { passes } = await chaos(s, 20261123, 10);
    const last = passes.at(-1)!;
    expect(passes.at(-2)!.map((r) => r.code), passes.at(-2)!.map((r) => r.stderr).join('\n')).toEqual([0, 0, 0]);
    expect(last[0]!.code, last[0]!.stderr).toBe(0);
    expect(await q.depth(s.queueUrl)).toEqual({ visible: 0, notVisible: 0 });
    expectOnce(readSink(join(s.dir, 'out')), s.ids);
    // The work was shared: chunks carry the run id of the worker that committed them.
    const writers = new Set(readdirSync(join(s.dir, 'out')).filter((f) => f.endsWith('.jsonl')).map((f) => f.replace(/-\d+\.jsonl$/, '')));
    expect(writers.size, 'workers that committed chunks').toBeGreaterThanOrEqual(3);
    // Temporary files of the killed workers were cleaned up by the runs after them.
    const tmp = join(s.dir, 'out', '.pipe-tmp', 'scale_jsonl');
    const leftover = readdirSync(tmp).flatMap((d) => readdirSync(join(tmp, d)));
    expect(leftover).toEqual([]);
  }, 240_000);

  it('into the s3 sink: every row once, no staging object left, every message deleted', async () => {
    await s3.createBucket('scale-lake');
    const s = await setup('scale_s3', 240, 12,
      '{ type: s3, bucket: scale-lake, prefix: cloudtrail/, partition: day, gzip: true, maxRows: 150, flushInterval: 150ms, endpoint: "${S3_ENDPOINT}", forcePathStyle: true }');
    const { passes } = await chaos(s, 7, 10);
    const last = passes.at(-1)!;
    expect(passes.at(-2)!.map((r) => r.code), passes.at(-2)!.map((r) => r.stderr).join('\n')).toEqual([0, 0, 0]);
    expect(last[0]!.code, last[0]!.stderr).toBe(0);
    expect(await q.depth(s.queueUrl)).toEqual({ visible: 0, notVisible: 0 });
    const { rows, staging } = await lakeRows('scale-lake', 'cloudtrail/');
    expect(staging).toEqual([]);
    expectOnce(rows, s.ids);
  }, 240_000);
});

describe('listing mode with shared state', () => {
  it('three workers listing one bucket take every object once; status shows the workers and never the password', async () => {
    const dir = tempDir();
    const bucket = 'scale-listing';
    await s3.createBucket(bucket);
    const ids: string[] = [];
    for (let i = 0; i < 150; i++) {
      const { body, ids: eventIds } = cloudTrailBody(1000 + i, 10);
      ids.push(...eventIds);
      await s3.put(bucket, `AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/01/obj-${String(i).padStart(3, '0')}.json.gz`, body);
    }
    const db = await pg.createDb('scale_listing');
    const state = pg.passwordUrl(new URL(db).pathname.slice(1));
    const file = join(dir, 'listing.yml');
    writeFileSync(file, `name: scale_listing
state: \${PIPE_STATE_URL}
source: { type: s3, bucket: ${bucket}, prefix: AWSLogs/, layout: cloudtrail, settle: 0s, endpoint: "\${S3_ENDPOINT}", forcePathStyle: true }
mappers: [cloudtrail]
sink: { type: jsonl, dir: ${join(dir, 'out')}, maxRows: 100, flushInterval: 100ms }
`);
    const env = { ...AWS_TEST_ENV, S3_ENDPOINT: s3.url, PIPE_STATE_URL: state, PIPE_LOCK_LEASE_MS: String(LEASE_MS) };
    const runs = await Promise.all([0, 1, 2].map(() => runCli(['run', '--once', file], { env })));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expectOnce(readSink(join(dir, 'out')), ids);
    const writers = new Set(readdirSync(join(dir, 'out')).filter((f) => f.endsWith('.jsonl')).map((f) => f.replace(/-\d+\.jsonl$/, '')));
    expect(writers.size, 'workers that committed chunks').toBeGreaterThanOrEqual(2);
    // One of them held the listing claim and moved the marks: a rerun lists from them and collects nothing.
    const again = await runCli(['run', '--once', file], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/0 artifacts, 0 rows/);
    const status = await runCli(['status', '--json', file], { env });
    expect(status.code, status.stderr).toBe(0);
    const report = JSON.parse(status.stdout) as { state: string; artifacts: { done: number }; workers: unknown[]; positions: Array<{ stream: string }> };
    expect(report.artifacts.done).toBe(150);
    expect(report.state).toContain(':***@');
    expect(report.workers).toEqual([]);
    expect(report.positions.length).toBeGreaterThan(0);
    for (const r of [...runs, again, status]) expect(r.stdout + r.stderr).not.toContain(pg.password);
  }, 120_000);
});

describe('a streams source with shared state', () => {
  it('one worker at a time reads the streams; after a SIGKILL the next takes over when the lease ends: every event once', async () => {
    const cw = await new CloudWatchLogsServer().start();
    try {
      const now = Date.now();
      const events = ['i-1', 'i-2', 'i-3'].flatMap((stream) => cw.putEvents('/app/api', stream, Array.from({ length: 300 }, (_, i) => ({
        timestamp: now - 9 * 3_600_000 + i * 100_000, message: `${stream} #${i}`,
      }))));
      const dir = tempDir();
      const file = join(dir, 'cw.yml');
      writeFileSync(file, `name: scale_cw
state: ${await pg.createDb('scale_cw')}
source: { type: cloudwatch, endpoint: ${cw.url}, logGroupPrefix: /app/, startTime: 10h, window: 1h, poll: 1s, maxRequestsPerSecond: 100 }
sink: { type: jsonl, dir: ${join(dir, 'out')}, flushInterval: 20ms }
`);
      const env = { ...AWS_TEST_ENV, PIPE_LOCK_LEASE_MS: String(LEASE_MS) };
      const first = spawnCli(['run', file], { env });
      first.stdin!.end();
      const firstDone = exited(first);
      const out = join(dir, 'out');
      for (let i = 0; i < 400 && readSink(out).length === 0; i++) await sleep(25);
      // While it lives, a second worker does not read the streams (with --once it leaves at once).
      const second = await runCli(['run', '--once', file], { env });
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toMatch(/0 rows/);
      first.kill('SIGKILL');
      await firstDone;
      const partial = readSink(out).length;
      expect(partial).toBeGreaterThan(0);
      expect(partial, 'killed mid-way').toBeLessThan(events.length);
      // Once its lease has ended, the next worker takes the streams over from the committed pointer.
      await sleep(LEASE_MS + 500);
      const third = await runCli(['run', '--once', file], { env });
      expect(third.code, third.stderr).toBe(0);
      const rows = readSink(out);
      const counts = idCounts(rows);
      expect([...counts.values()].filter((n) => n !== 1)).toEqual([]);
      expect([...counts.keys()].sort()).toEqual(events.map((e) => e.eventId).sort());
    } finally {
      await cw.close();
    }
  }, 120_000);
});

describe('a worker stalled past its lease', () => {
  it('loses its object to another worker, and its commit is refused: no duplicate', async () => {
    // The first worker's GET trickles, so it is still reading when it is stopped.
    const proxy = await S3Proxy.start(s3.url);
    let slowGets = 1;
    proxy.fault = (r) => (r.op === 'get' && slowGets-- > 0 ? { trickle: 2048, delayMs: 20 } : undefined);
    try {
      const s = await setup('scale_stall', 1, 3000, '{ type: jsonl, dir: $DIR/out, maxRows: 100, flushInterval: 100ms }', proxy.url, true);
      const stalled = spawnCli(['run', s.file], { env: s.env });
      stalled.stdin!.end();
      const stalledDone = exited(stalled);
      // Wait until it has committed some rows of the object, then stop it mid-object.
      const out = join(s.dir, 'out');
      mkdirSync(out, { recursive: true });
      for (let i = 0; i < 300 && readSink(out).length === 0; i++) await sleep(50);
      expect(readSink(out).length, 'the first worker committed part of the object').toBeGreaterThan(0);
      stalled.kill('SIGSTOP');
      expect(readSink(out).length, 'stopped in the middle of the object').toBeLessThan(s.ids.length);
      // pipe status shows the worker and the object it holds.
      const status = await runCli(['status', '--json', s.file], { env: s.env });
      const workers = (JSON.parse(status.stdout) as { workers: Array<{ claims: string[] }> }).workers;
      expect(workers.length).toBe(1);
      expect(workers[0]!.claims.join(' ')).toContain('s3://scale-stall-trail/');
      // Past its lease and the message's visibility timeout: another worker takes the object over.
      await sleep(Math.max(3000, VISIBILITY_S * 1000) + 1500);
      const other = await runCli(['run', '--once', s.file], { env: s.env });
      expect(other.code, other.stderr).toBe(0);
      expectOnce(readSink(out), s.ids);
      stalled.kill('SIGCONT');
      const r = await stalledDone;
      // It wakes to find its lease gone: it commits nothing more and exits 3.
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/lost/i);
      expectOnce(readSink(out), s.ids);
      expect(await q.depth(s.queueUrl)).toEqual({ visible: 0, notVisible: 0 });
    } finally {
      await proxy.close();
    }
  }, 120_000);
});
