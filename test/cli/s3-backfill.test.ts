/**
 * `pipe backfill` and `pipe run` with the s3 source: the real CLI and the real AWS SDK against a
 * real S3-compatible server (fauxqs) behind a request-counting proxy. Backfill windows, incremental
 * listing from marks on a bucket of thousands of keys, odd keys, objects that vanish or change
 * after listing, dry runs, the example pipelines, and a clean stderr in every command.
 */
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collect, idCounts, readSink, ROOT, runCli, spawnCli, type CliResult } from '../helpers/cli.js';
import { AWS_TEST_ENV, cloudTrailBody, cloudTrailKey, type S3Proxy, strayStderrLines, type S3Server } from '../helpers/s3.js';
import { s3Suite } from '../helpers/s3-suite.js';
import { tempDir } from '../helpers/tmp.js';

let s3: S3Server;
let proxy: S3Proxy;

s3Suite((servers) => ({ s3, proxy } = servers));

/** Runs the CLI against the proxy; every stderr line must be pipe's own. */
async function pipe(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const r = await runCli(args, { env: { ...AWS_TEST_ENV, S3_ENDPOINT: proxy.url, ...env } });
  expect(strayStderrLines(r.stderr), r.stderr).toEqual([]);
  return r;
}

function pipeline(dir: string, name: string, source: string, rest = 'mappers: [cloudtrail]'): string {
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, `name: ${name}
state: ${join(dir, 'state.db')}
source: { type: s3, endpoint: "\${S3_ENDPOINT}", forcePathStyle: true, settle: 0s, ${source} }
${rest}
sink: { type: jsonl, dir: ${join(dir, 'out')}, maxRows: 400, flushInterval: 100ms }
`);
  return file;
}

function expectOnce(rows: Array<Record<string, unknown>>, ids: string[]): void {
  const counts = idCounts(rows);
  expect([...counts.values()].filter((n) => n !== 1)).toEqual([]);
  expect([...counts.keys()].sort()).toEqual([...ids].sort());
}

const A = '111111111111';
const B = '222222222222';

describe('s3 backfill and run', () => {
  it('backfill of a prefix and a date range collects exactly that; run collects the rest; nothing twice', async () => {
    const bucket = 'bf';
    await s3.createBucket(bucket);
    const byKey = new Map<string, string[]>();
    const objects: Array<{ key: string; body: Buffer }> = [];
    let file = 0;
    for (const account of [A, B]) for (const region of ['eu-west-1', 'us-east-1']) for (let day = 1; day <= 5; day++) {
      for (let n = 0; n < 2; n++) {
        const key = cloudTrailKey(account, region, day, n);
        const { body, ids } = cloudTrailBody(file++, 4);
        byKey.set(key, ids);
        objects.push({ key, body });
      }
    }
    await s3.putMany(bucket, objects);
    const dir = tempDir();
    const file1 = pipeline(dir, 'trail', `bucket: ${bucket}, prefix: AWSLogs/, layout: cloudtrail, concurrency: 4`);
    const out = join(dir, 'out');
    const inWindow = [...byKey.keys()].filter((k) => k.startsWith(`AWSLogs/${A}/`) && /\/2024\/03\/0[23]\//.test(k));
    expect(inWindow).toHaveLength(8);

    const back = await pipe(['backfill', file1, '--prefix', `AWSLogs/${A}/`, '--from', '2024-03-02', '--to', '2024-03-04', '--no-progress']);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stderr).toMatch(/8 artifacts, 32 rows/);
    let rows = readSink(out);
    expect(new Set(rows.map((r) => r._source))).toEqual(new Set(inWindow.map((k) => `s3://${bucket}/${k}`)));
    expectOnce(rows, inWindow.flatMap((k) => byKey.get(k)!));
    expect(proxy.requests.filter((r) => r.op === 'get').map((r) => r.key).sort()).toEqual([...inWindow].sort());
    // Only the accounts under --prefix were discovered, and the regions listed from the window's first day.
    const lists = proxy.requests.filter((r) => r.op === 'list');
    expect(lists.every((r) => (r.query.get('prefix') ?? '').startsWith(`AWSLogs/${A}/`))).toBe(true);
    expect(lists.filter((r) => !r.query.get('delimiter')).map((r) => r.query.get('start-after')))
      .toEqual([`AWSLogs/${A}/CloudTrail/eu-west-1/2024/03/02`, `AWSLogs/${A}/CloudTrail/us-east-1/2024/03/02`]);

    proxy.reset();
    const again = await pipe(['backfill', file1, '--prefix', `AWSLogs/${A}/`, '--from', '2024-03-02', '--to', '2024-03-04', '--no-progress']);
    expect(again.stderr).toMatch(/0 artifacts, 0 rows.*8 unchanged/);
    expect(proxy.count('get')).toBe(0);

    proxy.reset();
    const run = await pipe(['run', file1, '--no-progress']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/32 artifacts, 128 rows.*8 unchanged/);
    expect(proxy.count('get')).toBe(32);
    rows = readSink(out);
    expectOnce(rows, [...byKey.values()].flat());

    proxy.reset();
    const idle = await pipe(['run', file1, '--no-progress']);
    expect(idle.stderr).toMatch(/0 artifacts, 0 rows/);
    expect(proxy.count('get')).toBe(0);
    expect(readSink(out)).toHaveLength(160);
  });

  it('the List calls of an incremental run grow with the new keys, not with the bucket', async () => {
    const bucket = 'big';
    await s3.createBucket(bucket);
    const { body } = cloudTrailBody(0, 1);
    const keys = (days: number[], perDay: number): string[] => days.flatMap((d) => ['eu-west-1', 'us-east-1']
      .flatMap((region) => Array.from({ length: perDay }, (_, n) => cloudTrailKey(A, region, d, n))));
    const old = keys(Array.from({ length: 25 }, (_, i) => i + 1), 40);
    expect(old).toHaveLength(2_000);
    await s3.putMany(bucket, old.map((key) => ({ key, body })));
    const dir = tempDir();
    // Each object is one line: a row per object, its _id from the object's identity.
    const file = pipeline(dir, 'big', `bucket: ${bucket}, layout: cloudtrail, concurrency: 16, maxKeys: 100`, 'loader: [gzip, lines]');
    const full = await pipe(['run', file, '--no-progress']);
    expect(full.code, full.stderr).toBe(0);
    expect(full.stderr).toMatch(/2000 artifacts, 2,000 rows/);
    // 1 for the accounts, 1 for the regions, then 1,000 keys per region at 100 a page.
    expect(proxy.count('list')).toBe(2 + 2 * 10);

    // Objects still in flight when a region's listing ended are above its mark: listed once more.
    proxy.reset();
    const settle = await pipe(['run', file, '--no-progress']);
    expect(settle.stderr).toMatch(/0 artifacts, 0 rows/);
    expect(proxy.count('get')).toBe(0);
    expect(proxy.count('list')).toBeLessThanOrEqual(2 + 2 * 2);

    const fresh = keys([26], 12);
    await s3.putMany(bucket, fresh.map((key) => ({ key, body })));
    proxy.reset();
    const inc = await pipe(['run', file, '--no-progress']);
    expect(inc.code, inc.stderr).toBe(0);
    expect(inc.stderr).toMatch(/24 artifacts, 24 rows/);
    // Discovery (accounts, regions) and one page per region, starting after its last old key.
    expect(proxy.count('list')).toBe(4);
    expect(proxy.count('get')).toBe(24);
    const leafLists = proxy.requests.filter((r) => r.op === 'list' && !r.query.get('delimiter'));
    expect(leafLists.map((r) => r.query.get('start-after'))).toEqual([cloudTrailKey(A, 'eu-west-1', 25, 39), cloudTrailKey(A, 'us-east-1', 25, 39)]);
    const rows = readSink(join(dir, 'out'));
    expect(rows).toHaveLength(2_024);
    expect(new Set(rows.map((r) => r._source)).size).toBe(2_024);
    expect(idCounts(rows).size).toBe(2_024);
  });

  it('keys with spaces, = and unicode, zero-byte objects, objects deleted or replaced after listing, dry run', async () => {
    const bucket = 'odd';
    await s3.createBucket(bucket);
    const odd = 'logs/a dir/k=v ü 日本.log';
    await s3.put(bucket, odd, 'first line\nsecond line\n');
    await s3.put(bucket, 'logs/empty.log', '');
    await s3.put(bucket, 'logs/gone.log', 'never read\n');
    await s3.put(bucket, 'logs/replaced.log', 'version 1\n');
    const dir = tempDir();
    const file = pipeline(dir, 'odd', `bucket: ${bucket}, prefix: logs/`, 'loader: [lines]');
    const out = join(dir, 'out');

    const dry = await pipe(['run', file, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stderr.split('\n').filter((l) => l.includes('would collect'))).toEqual([
      `pipe: odd: would collect s3://odd/${odd} (23 B)`,
      'pipe: odd: would collect s3://odd/logs/empty.log (0 B)',
      'pipe: odd: would collect s3://odd/logs/gone.log (11 B)',
      'pipe: odd: would collect s3://odd/logs/replaced.log (10 B)',
    ]);
    expect(dry.stderr).toMatch(/dry run: 4 artifacts \(44 B\) would be collected/);
    expect(proxy.count('get')).toBe(0);

    proxy.before = async (r) => {
      if (r.op !== 'get') return;
      if (r.key === 'logs/gone.log') await s3.delete(bucket, r.key);
      if (r.key === 'logs/replaced.log') await s3.put(bucket, r.key, 'version 2\n');
    };
    const run = await pipe(['run', file, '--no-progress', '-v']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/debug: node warning: Warning: NodeVersionSupportWarning/);
    expect(run.stderr).toMatch(/warn: artifact skipped: s3:\/\/odd\/logs\/gone\.log: NoSuchKey \(HTTP 404\)/);
    expect(run.stderr).toMatch(/warn: artifact skipped: s3:\/\/odd\/logs\/replaced\.log: PreconditionFailed \(HTTP 412\)/);
    expect(run.stderr).toMatch(/2 artifacts, 2 rows.*2 vanished since listed, skipped/);
    let rows = readSink(out);
    expect(rows.map((r) => [r._source, r.message])).toEqual([[`s3://odd/${odd}`, 'first line'], [`s3://odd/${odd}`, 'second line']]);
    const status = JSON.parse((await pipe(['status', file, '--json'])).stdout) as { artifacts: Record<string, number> };
    expect(status.artifacts).toEqual({ done: 2, failed: 0, inProgress: 0, skipped: 2 });
    const db = new Database(join(dir, 'state.db'), { readonly: true });
    const skipped = db.prepare("SELECT uri, error_code AS code, error_message AS reason FROM artifacts WHERE status = 'skipped' ORDER BY uri").all() as Array<Record<string, string>>;
    db.close();
    expect(skipped.map((x) => [x.uri, x.code])).toEqual([['s3://odd/logs/gone.log', 'PIPE_ARTIFACT_NOT_FOUND'], ['s3://odd/logs/replaced.log', 'PIPE_ARTIFACT_NOT_FOUND']]);
    expect(skipped[0]!.reason).toMatch(/NoSuchKey .*deleted since it was listed/);
    expect(skipped[1]!.reason).toMatch(/PreconditionFailed .*ETag changed/);

    // The replaced object is a new version (new ETag): collected; the deleted one is gone; the rest unchanged.
    proxy.reset();
    await s3.put(bucket, odd, 'first line\nsecond line, edited\n');
    const next = await pipe(['run', file, '--no-progress']);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toMatch(/2 artifacts, 3 rows.*1 unchanged/);
    expect(proxy.requests.filter((r) => r.op === 'get').map((r) => r.key).sort()).toEqual([odd, 'logs/replaced.log']);
    rows = readSink(out);
    expect(rows.map((r) => r.message).sort()).toEqual(['first line', 'first line', 'second line', 'second line, edited', 'version 2']);
    expect(idCounts(rows).size).toBe(rows.length);
  });

  it('poll keeps collecting new objects until SIGTERM, then flushes and exits 130; --once makes one pass', async () => {
    const bucket = 'polled';
    await s3.createBucket(bucket);
    const first = cloudTrailBody(500, 3);
    const second = cloudTrailBody(501, 3);
    await s3.put(bucket, cloudTrailKey(A, 'us-east-1', 1, 0), first.body);
    const dir = tempDir();
    const file = pipeline(dir, 'polled', `bucket: ${bucket}, layout: cloudtrail, poll: 1s`);
    const once = await pipe(['run', file, '--once', '--no-progress']);
    expect(once.code, once.stderr).toBe(0);
    expect(once.stderr).toMatch(/1 artifacts, 3 rows/);

    const child = spawnCli(['run', file, '--no-progress'], { env: { ...AWS_TEST_ENV, S3_ENDPOINT: proxy.url } });
    const done = collect(child);
    await s3.put(bucket, cloudTrailKey(A, 'us-east-1', 2, 0), second.body);
    const deadline = Date.now() + 15_000;
    while (readSink(join(dir, 'out')).length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    const r = await done;
    expect(strayStderrLines(r.stderr)).toEqual([]);
    expect(r.code, r.stderr).toBe(130);
    expectOnce(readSink(join(dir, 'out')), [...first.ids, ...second.ids]);
  });
});

describe('example pipelines', () => {
  it('validate with their variables set, and name the variable when it is not', async () => {
    const files = ['pipelines/cloudtrail.yml', 'pipelines/vpcflow.yml'].map((f) => join(ROOT, f));
    const ok = await pipe(['validate', ...files], { TRAIL_BUCKET: 'my-trail-bucket', FLOW_BUCKET: 'my-flow-bucket' });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('cloudtrail.yml: ok (pipeline cloudtrail)');
    expect(ok.stdout).toContain('vpcflow.yml: ok (pipeline vpcflow)');
    const missing = await runCli(['validate', files[0]!], { env: { TRAIL_BUCKET: undefined } });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/source\.bucket: variable TRAIL_BUCKET is not set/);
  });
});
