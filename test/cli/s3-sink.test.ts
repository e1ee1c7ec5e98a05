/**
 * The `s3` sink through the real CLI: CloudTrail files → cloudtrail → s3 (a real S3-compatible
 * server on 127.0.0.1), SIGKILLed inside every window of its commit protocol (failpoints) and at
 * seeded random instants, then run to completion: every event is in the bucket exactly once and no
 * staging object is left.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, runCli, spawnCli } from '../helpers/cli.js';
import { prng, writeCloudTrail } from '../helpers/data.js';
import { AWS_TEST_ENV, startS3, strayStderrLines, type S3Server } from '../helpers/s3.js';
import { tempDir } from '../helpers/tmp.js';

const SEED = Number(process.env.PIPE_CHAOS_SEED ?? 20240301);
let s3: S3Server;

beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3.close();
});

function pipeline(dir: string, bucket: string, extra = ''): string {
  const file = join(dir, 'ct.yml');
  writeFileSync(file, `name: ct
state: ${join(dir, 'state.db')}
source: { type: files, path: ${join(dir, 'in')} }
mappers: [cloudtrail]
sink: { type: s3, bucket: ${bucket}, prefix: lake/ct, endpoint: ${s3.url}, forcePathStyle: true, maxRows: 170, flushInterval: 50ms, partition: hour${extra} }
`);
  return file;
}

async function allKeys(bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    keys.push(...(out.Contents ?? []).map((c) => c.Key!));
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** `_id` counts over every published object (staging objects and dead letters left out). */
async function idCounts(bucket: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const key of await allKeys(bucket, 'lake/ct/')) {
    if (key.includes('/_pipe-tmp/') || key.includes('/_errors/')) continue;
    expect(key).toMatch(/^lake\/ct\/dt=2024-03-01\/hour=\d\d\/[\w-]+-\d{6}\.jsonl\.gz$/);
    const out = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const text = gunzipSync(Buffer.from(await out.Body!.transformToByteArray())).toString('utf8');
    for (const line of text.split('\n')) {
      if (!line) continue;
      const id = String((JSON.parse(line) as { _id: unknown })._id);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  return counts;
}

/** The sink spools chunks under os.tmpdir(): the test's own directory here, to check it is left clean. */
const env = (dir: string, extra: Record<string, string> = {}): Record<string, string> => ({ ...AWS_TEST_ENV, TMPDIR: dir, ...extra });

describe('s3 sink: kill -9 at any instant', () => {
  it.each(['0', '2'])('loses and duplicates nothing (--threads %s)', async (threads) => {
    const dir = tempDir('s3sink-');
    const bucket = `ct-kill-${threads}`;
    await s3.createBucket(bucket);
    const ids = writeCloudTrail(join(dir, 'in'), 30, 120);
    const file = pipeline(dir, bucket);
    const args = ['run', file, '--no-progress', '--threads', threads];
    const random = prng(SEED + Number(threads));
    let killed = 0;
    // Inside each window of the protocol: spooling, uploaded but not committed, committed but not
    // copied, copied but staging not deleted, published but its record not closed.
    for (const point of ['sink:write@3', 'sink:before-commit@2', 'sink:after-commit@3', 'sink:after-copy@2', 'sink:after-rename@2', 'sink:after-commit@1']) {
      const r = await runCli(args, { env: env(dir, { PIPE_FAILPOINT: point }) });
      if (r.signal === 'SIGKILL') killed++;
      else expect(r.code, r.stderr).toBe(0);
    }
    expect(killed).toBeGreaterThanOrEqual(5);
    for (let round = 0; round < 4; round++) {
      const child = spawnCli(args, { env: env(dir) });
      const done = collect(child);
      const timer = setTimeout(() => child.kill('SIGKILL'), 300 + Math.floor(random() * 700));
      const r = await done;
      clearTimeout(timer);
      if (r.signal !== 'SIGKILL') expect(r.code, r.stderr).toBe(0);
      // Whatever is published after a crash is already duplicate-free.
      expect([...(await idCounts(bucket)).values()].every((n) => n === 1)).toBe(true);
    }
    const final = await runCli(args, { env: env(dir) });
    expect(final.code, final.stderr).toBe(0);
    expect(strayStderrLines(final.stderr)).toEqual([]);
    const counts = await idCounts(bucket);
    const missing = ids.filter((id) => !counts.has(id));
    const duplicated = [...counts].filter(([, n]) => n > 1);
    expect({ missing: missing.length, duplicated: duplicated.length, rows: counts.size }).toEqual({ missing: 0, duplicated: 0, rows: ids.length });
    // No staging object is left; only the owner record stays under _pipe-tmp/.
    expect(await allKeys(bucket, 'lake/ct/_pipe-tmp/')).toEqual(['lake/ct/_pipe-tmp/ct.owner.json']);
    // And the local spool of every run, killed ones included, is gone.
    expect(readdirSync(join(dir, 'pipe-s3-sink'))).toEqual([]);
  });
});

describe('s3 sink through the CLI', () => {
  it('validate --ping lists the bucket; a missing bucket fails the run naming it', async () => {
    const dir = tempDir('s3sink-');
    await s3.createBucket('ct-ping');
    writeCloudTrail(join(dir, 'in'), 1, 5);
    const ok = await runCli(['validate', '--ping', pipeline(dir, 'ct-ping')], { env: env(dir) });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('  sink s3: ok: s3://ct-ping/lake/ct/ can be listed');
    const file = pipeline(dir, 'ct-nope', ', maxAttempts: 1');
    const bad = await runCli(['validate', '--ping', file], { env: env(dir) });
    expect(bad.code).toBe(2);
    expect(bad.stdout).toMatch(/sink s3: FAILED: s3 sink: ListObjectsV2 s3:\/\/ct-nope\/lake\/ct\/: NoSuchBucket.*\[PIPE_SINK_FAILED\]/);
    const run = await runCli(['run', file, '--no-progress'], { env: env(dir) });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/s3:\/\/ct-nope\//);
  });
});
