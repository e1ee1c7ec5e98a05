/**
 * Queue mode of the s3 source through the real CLI and the real AWS SDK, against fauxqs serving S3,
 * SQS and SNS on one loopback port (the CLI reaches SQS through a recording proxy, S3 through the
 * fault-injecting one): every notification shape, test and non-create events, odd keys, objects
 * notified twice or also listed, unparseable messages left for the dead-letter queue, visibility
 * extended for a slow object, and a kill -9 followed by a rerun. Every row exactly once; every
 * message deleted.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { collect, idCounts, readSink, runCli, spawnCli, type CliResult } from '../helpers/cli.js';
import { AWS_TEST_ENV, cloudTrailBody, S3Proxy, startS3, strayStderrLines, type S3Server } from '../helpers/s3.js';
import { eventBridgeNotification, queues, s3Notification, SqsProxy, testEvent, type Queues } from '../helpers/sqs.js';
import { tempDir } from '../helpers/tmp.js';

let s3: S3Server;
let s3proxy: S3Proxy;
let sqsProxy: SqsProxy;
let q: Queues;

beforeAll(async () => {
  s3 = await startS3();
  s3proxy = await S3Proxy.start(s3.url);
  sqsProxy = await SqsProxy.start(s3.url);
  q = queues(s3.url);
});
afterAll(async () => {
  q?.close();
  await sqsProxy?.close();
  await s3proxy?.close();
  await s3?.close();
});
beforeEach(() => {
  s3proxy.reset();
  sqsProxy.reset();
});

const env = (queue: string): Record<string, string> => ({
  ...AWS_TEST_ENV, QUEUE_URL: queue, AWS_ENDPOINT_URL_SQS: sqsProxy.url, AWS_ENDPOINT_URL_S3: s3proxy.url,
});

async function pipe(args: string[], queue: string): Promise<CliResult> {
  const r = await runCli(args, { env: env(queue) });
  expect(strayStderrLines(r.stderr), r.stderr).toEqual([]);
  return r;
}

function pipeline(dir: string, bucket: string, source = '', name = 'q'): string {
  const file = join(dir, `${name}-${Math.random().toString(16).slice(2, 8)}.yml`);
  writeFileSync(file, `name: ${name}
state: ${join(dir, 'state.db')}
source: { type: s3, bucket: ${bucket}, forcePathStyle: true, settle: 0s, ${source} }
mappers: [cloudtrail]
sink: { type: jsonl, dir: ${join(dir, 'out')}, maxRows: 500, flushInterval: 100ms }
`);
  return file;
}

const queued = (extra = ''): string => `queue: "\${QUEUE_URL}", visibilityTimeout: 30s, ${extra}`;

function expectOnce(out: string, ids: string[]): void {
  const counts = idCounts(readSink(out));
  const missing = ids.filter((id) => !counts.has(id)).length;
  const duplicated = [...counts.values()].filter((n) => n > 1).length;
  expect({ missing, duplicated, rows: counts.size }).toEqual({ missing: 0, duplicated: 0, rows: ids.length });
}

let fileNo = 0;

/** Puts CloudTrail deliveries under `keys`; returns each key's ETag, size and event ids. */
async function seed(bucket: string, keys: string[], events = 3): Promise<Map<string, { etag: string; size: number; ids: string[] }>> {
  await s3.createBucket(bucket);
  const out = new Map<string, { etag: string; size: number; ids: string[] }>();
  for (const key of keys) {
    const { body, ids } = cloudTrailBody(1000 + fileNo++, events);
    out.set(key, { etag: await s3.put(bucket, key, body), size: body.length, ids });
  }
  return out;
}

describe('s3 source, queue mode', () => {
  it('every notification shape, test and non-create events, odd keys, duplicates: each object once, every message deleted', async () => {
    const bucket = 'shapes';
    const keys = {
      spaces: 'AWSLogs/with space/file one.json.gz',
      unicode: 'AWSLogs/unicodé/fichier-é-ü.json.gz',
      equals: 'AWSLogs/dt=2024-03-01/x=y.json.gz',
      sns: 'AWSLogs/sns/envelope.json.gz',
      raw: 'AWSLogs/sns/raw.json.gz',
      bridge: 'AWSLogs/eventbridge/a b=c.json.gz',
      twice: 'AWSLogs/twice.json.gz',
      noEtag: 'AWSLogs/no-etag.json.gz',
      gone: 'AWSLogs/gone.json.gz',
      excluded: 'other/excluded.json.gz',
    };
    const objs = await seed(bucket, Object.values(keys));
    await s3.delete(bucket, keys.gone);
    const { url, arn } = await q.create('shapes');
    const publishEnvelope = await q.topic('shapes-envelope', arn, false);
    const publishRaw = await q.topic('shapes-raw', arn, true);
    const o = (k: string): { etag: string; size: number; ids: string[] } => objs.get(k)!;
    await q.send(url, testEvent(bucket));
    for (const k of [keys.spaces, keys.unicode, keys.equals, keys.twice, keys.gone, keys.excluded]) await q.send(url, s3Notification(bucket, k, o(k).etag, o(k).size));
    await publishEnvelope(s3Notification(bucket, keys.sns, o(keys.sns).etag, o(keys.sns).size));
    await publishRaw(s3Notification(bucket, keys.raw, o(keys.raw).etag, o(keys.raw).size));
    await q.send(url, eventBridgeNotification(bucket, keys.bridge, o(keys.bridge).etag, o(keys.bridge).size));
    await q.send(url, eventBridgeNotification(bucket, keys.twice, o(keys.twice).etag, o(keys.twice).size));
    await q.send(url, s3Notification(bucket, keys.noEtag, undefined, undefined));
    await q.send(url, s3Notification(bucket, keys.spaces, undefined, undefined, 'ObjectRemoved:Delete'));
    await q.send(url, s3Notification('another-bucket', keys.spaces, o(keys.spaces).etag, o(keys.spaces).size));
    await q.send(url, JSON.stringify({ ...JSON.parse(eventBridgeNotification(bucket, keys.twice, 'x', 1)), 'detail-type': 'Object Deleted' }));
    expect(await q.depth(url)).toEqual({ visible: 15, notVisible: 0 });

    const dir = tempDir();
    const file = pipeline(dir, bucket, queued('include: ["AWSLogs/**"]'));
    const r = await pipe(['run', file, '--once', '--no-progress'], url);
    expect(r.code, r.stderr).toBe(0);
    const collected = [keys.spaces, keys.unicode, keys.equals, keys.sns, keys.raw, keys.bridge, keys.twice, keys.noEtag];
    const rows = readSink(join(dir, 'out'));
    expectOnce(join(dir, 'out'), collected.flatMap((k) => o(k).ids));
    expect(new Set(rows.map((row) => row._source))).toEqual(new Set(collected.map((k) => `s3://${bucket}/${k}`)));
    expect(r.stderr).toMatch(/8 artifacts, 24 rows/);
    expect(r.stderr).toContain(`queue ${url}: 15 messages, 10 objects, 1 test events ignored, 2 non-create events ignored, 0 unparseable (left in the queue), 1 objects of other buckets ignored, 1 excluded by include/exclude, 15 deleted`);
    expect(r.stderr).toContain('notifications of bucket another-bucket are ignored');
    expect(r.stderr).toMatch(/artifact skipped: s3:\/\/shapes\/AWSLogs\/gone\.json\.gz: .*deleted since it was listed/);
    expect(await q.depth(url)).toEqual({ visible: 0, notVisible: 0 });
    // Each object read once (the one notified twice too); the object without an ETag was looked up.
    const gets = s3proxy.requests.filter((x) => x.op === 'get').map((x) => x.key);
    expect(gets.filter((k) => k === keys.twice)).toHaveLength(1);
    expect(s3proxy.requests.filter((x) => x.method === 'HEAD').map((x) => x.key)).toEqual([keys.noEtag]);
    expect(s3proxy.count('list')).toBe(0);
    // Every message received once, through the explicit endpoint.
    expect([...sqsProxy.receivedCounts().values()].filter((n) => n !== 1)).toEqual([]);
    expect(sqsProxy.receivedCounts().size).toBe(15);
  });

  it('an object collected by a listing run is not collected again when notified (and vice versa)', async () => {
    const bucket = 'listed';
    const objs = await seed(bucket, ['a/listed.json.gz', 'a/notified.json.gz']);
    const { url } = await q.create('listed');
    const dir = tempDir();
    // The same pipeline (name and state), listing the bucket.
    const listing = pipeline(dir, bucket);
    const first = await pipe(['run', listing, '--no-progress'], url);
    expect(first.stderr).toMatch(/2 artifacts, 6 rows/);
    const extra = await seed(bucket, ['a/new.json.gz']);
    for (const [k, v] of [...objs, ...extra]) await q.send(url, s3Notification(bucket, k, v.etag, v.size));
    const file = pipeline(dir, bucket, queued());
    // A dry run says what it would collect and changes nothing: every message stays, visible.
    const dry = await pipe(['run', file, '--once', '--dry-run', '--no-progress'], url);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toContain('would collect s3://listed/a/new.json.gz');
    expect(dry.stderr).toMatch(/dry run: 1 artifacts .* would be collected, 2 already collected/);
    expect(await q.depth(url)).toEqual({ visible: 3, notVisible: 0 });
    const r = await pipe(['run', file, '--once', '--no-progress'], url);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/1 artifacts, 3 rows.*2 unchanged/);
    expectOnce(join(dir, 'out'), [...objs.values(), ...extra.values()].flatMap((v) => v.ids));
    expect(await q.depth(url)).toEqual({ visible: 0, notVisible: 0 });
    // And a backfill of a queue pipeline lists the bucket: nothing new.
    const back = await pipe(['backfill', file, '--from', '2000-01-01', '--no-progress'], url);
    expect(back.stderr).toMatch(/0 artifacts, 0 rows.*3 unchanged/);
  });

  it('an unparseable message is recorded as skipped with its reason and left in the queue, once per run', async () => {
    const bucket = 'bad';
    const objs = await seed(bucket, ['good.json.gz']);
    const { url } = await q.create('bad');
    const badId = await q.send(url, 'this is not JSON');
    const unknownId = await q.send(url, JSON.stringify({ hello: 'world' }));
    const [[key, v]] = [...objs];
    await q.send(url, s3Notification(bucket, key!, v!.etag, v!.size));
    const dir = tempDir();
    // A visibility timeout shorter than the run (a slow object): the bad messages come back, and are not recorded twice.
    s3proxy.fault = (x) => (x.op === 'get' ? { trickle: Math.ceil(v!.size / 25), delayMs: 100 } : undefined);
    const file = pipeline(dir, bucket, 'queue: "${QUEUE_URL}", visibilityTimeout: 1s');
    const r = await pipe(['run', file, '--once', '--no-progress'], url);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/1 artifacts, 3 rows/);
    expect(r.stderr.match(/not an S3 event notification, left in the queue/g)).toHaveLength(2);
    expect(sqsProxy.receivedCounts().get(badId)).toBeGreaterThanOrEqual(2);
    expect(r.stderr).toContain(`${url}#${badId}: not an S3 event notification, left in the queue for its redrive policy (dead-letter queue): not JSON: 'this is not JSON'`);
    const depth = await q.depth(url);
    expect(depth.visible + depth.notVisible).toBe(2);
    const status = await pipe(['status', file], url);
    expect(status.stdout).toContain(`${url}#${badId}: not JSON: 'this is not JSON'`);
    expect(status.stdout).toContain(`${url}#${unknownId}: not an S3 event notification (no Records, Event or detail-type; keys: hello)`);
    const json = JSON.parse((await pipe(['status', file, '--json'], url)).stdout) as { skipped: Array<{ uri: string }> };
    expect(json.skipped.map((s) => s.uri).sort()).toEqual([`${url}#${badId}`, `${url}#${unknownId}`].sort());
  });

  it('visibility is extended while an object takes longer to read than the visibility timeout: received once', async () => {
    const bucket = 'slow';
    const objs = await seed(bucket, ['slow.json.gz'], 2_000);
    const { url } = await q.create('slow');
    const [[key, v]] = [...objs];
    const id = await q.send(url, s3Notification(bucket, key!, v!.etag, v!.size));
    // About 5 s of body against a 2 s visibility timeout.
    s3proxy.fault = (x) => (x.op === 'get' ? { trickle: Math.ceil(v!.size / 50), delayMs: 100 } : undefined);
    const dir = tempDir();
    const file = pipeline(dir, bucket, 'queue: "${QUEUE_URL}", visibilityTimeout: 2s, timeout: 10s');
    const started = Date.now();
    const r = await pipe(['run', file, '--once', '--no-progress'], url);
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - started).toBeGreaterThan(4_000);
    expectOnce(join(dir, 'out'), v!.ids);
    expect(sqsProxy.receivedCounts()).toEqual(new Map([[id, 1]]));
    expect(sqsProxy.count('ChangeMessageVisibility')).toBeGreaterThanOrEqual(4);
    expect(sqsProxy.count('DeleteMessage')).toBe(1);
    expect(await q.depth(url)).toEqual({ visible: 0, notVisible: 0 });
  });

  it('run keeps receiving until SIGINT; then a message whose object is half read is visible again at once', async () => {
    const bucket = 'stopping';
    const objs = await seed(bucket, ['fast.json.gz', 'slow.json.gz'], 400);
    const { url } = await q.create('stopping');
    const fast = objs.get('fast.json.gz')!;
    const slow = objs.get('slow.json.gz')!;
    s3proxy.fault = (x) => (x.op === 'get' && x.key === 'slow.json.gz' ? { trickle: 256, delayMs: 50 } : undefined);
    const dir = tempDir();
    const out = join(dir, 'out');
    const file = pipeline(dir, bucket, queued());
    const child = spawnCli(['run', file, '--no-progress'], { env: env(url) });
    child.stdin!.end();
    const done = collect(child);
    const until = async (what: () => boolean | Promise<boolean>): Promise<void> => {
      const deadline = Date.now() + 20_000;
      while (!(await what()) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 25));
    };
    await q.send(url, s3Notification(bucket, 'fast.json.gz', fast.etag, fast.size));
    await until(() => readSink(out).length === 400);
    await until(async () => (await q.depth(url)).notVisible === 0);
    expect(await q.depth(url)).toEqual({ visible: 0, notVisible: 0 });
    // Still receiving: a message sent now is taken.
    await q.send(url, s3Notification(bucket, 'slow.json.gz', slow.etag, slow.size));
    await until(() => s3proxy.requests.some((x) => x.key === 'slow.json.gz' && x.sent > 0));
    child.kill('SIGINT');
    const r = await done;
    expect(r.code, r.stderr).toBe(130);
    expect(strayStderrLines(r.stderr), r.stderr).toEqual([]);
    expect(r.stderr).toMatch(/queue .*: 2 messages, 2 objects, .* 1 deleted/);
    // Made visible at once rather than after the visibility timeout.
    const changes = sqsProxy.calls.filter((c) => c.action === 'ChangeMessageVisibility').map((c) => c.visibility);
    expect(changes.length).toBeGreaterThanOrEqual(1);
    expect(changes.every((v) => v === 0)).toBe(true);
    expect(await q.depth(url)).toEqual({ visible: 1, notVisible: 0 });
    s3proxy.reset();
    const again = await pipe(['run', file, '--once', '--no-progress'], url);
    expect(again.code, again.stderr).toBe(0);
    expectOnce(out, [...fast.ids, ...slow.ids]);
    expect(await q.depth(url)).toEqual({ visible: 0, notVisible: 0 });
  });

  it('validate --ping reads the queue\'s attributes; a missing queue is named', async () => {
    const { url } = await q.create('pinged');
    const dir = tempDir();
    const file = pipeline(dir, 'pinged', queued());
    // (Not `pipe`: validate does not route the SDK's Node-version notice off stderr yet.)
    const ok = await runCli(['validate', '--ping', file], { env: env(url) });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`source s3: ok: queue ${url} can be read (0 messages waiting, 0 in flight)`);
    const missing = url.replace('pinged', 'missing');
    const bad = await runCli(['validate', '--ping', file], { env: env(missing) });
    expect(bad.code).toBe(2);
    expect(bad.stdout).toContain(`source s3: FAILED: queue ${missing}: GetQueueAttributes: the queue does not exist`);
    const run = await pipe(['run', file, '--once', '--no-progress'], missing);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`queue ${missing}: ReceiveMessage: the queue does not exist`);
  });

  it('an idle run stops at once on SIGTERM, its long poll cut short', async () => {
    const { url } = await q.create('idle');
    await s3.createBucket('idle');
    const dir = tempDir();
    const child = spawnCli(['run', pipeline(dir, 'idle', queued()), '--no-progress'], { env: env(url) });
    child.stdin!.end();
    const done = collect(child);
    const deadline = Date.now() + 20_000;
    while (sqsProxy.count('ReceiveMessage') === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 25));
    await new Promise((res) => setTimeout(res, 200));
    const stoppedAt = Date.now();
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code, r.stderr).toBe(130);
    expect(Date.now() - stoppedAt).toBeLessThan(3_000);
    expect(r.stderr).toContain(`queue ${url}: 0 messages, 0 objects`);
  });

  it('kill -9 mid-run, then --once: every row exactly once and the queue empty', async () => {
    const bucket = 'killed';
    const keys = Array.from({ length: 24 }, (_, i) => `AWSLogs/k/${String(i).padStart(3, '0')}.json.gz`);
    const objs = await seed(bucket, keys, 400);
    const { url } = await q.create('killed');
    for (const [k, v] of objs) await q.send(url, s3Notification(bucket, k, v.etag, v.size));
    // Slow bodies, so the kill lands with objects half read and messages in flight.
    s3proxy.fault = (x) => (x.op === 'get' ? { trickle: 2_048, delayMs: 20 } : undefined);
    const dir = tempDir();
    const out = join(dir, 'out');
    const file = pipeline(dir, bucket, 'queue: "${QUEUE_URL}", visibilityTimeout: 2s, concurrency: 4');
    const child = spawnCli(['run', file, '--no-progress'], { env: env(url) });
    child.stdin!.end();
    const done = collect(child);
    const deadline = Date.now() + 30_000;
    while (readSink(out).length < 1_000 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 25));
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');
    const before = readSink(out).length;
    expect(before).toBeGreaterThanOrEqual(1_000);
    expect(before).toBeLessThan(24 * 400);
    // The killed run's messages come back once their visibility timeout passes.
    await new Promise((res) => setTimeout(res, 2_500));
    s3proxy.reset();
    const r = await pipe(['run', file, '--once', '--no-progress'], url);
    expect(r.code, r.stderr).toBe(0);
    expectOnce(out, [...objs.values()].flatMap((v) => v.ids));
    expect(await q.depth(url)).toEqual({ visible: 0, notVisible: 0 });
  });
});
