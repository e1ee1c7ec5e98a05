/** `pipe validate --ping`: one line per component, exit 2 when any cannot be reached. */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { CloudWatchLogsServer } from '../helpers/cloudwatch-server.js';
import { AWS_TEST_ENV, startS3, type S3Server } from '../helpers/s3.js';
import { tempDir } from '../helpers/tmp.js';

function pipeline(dir: string, source: string, sinkDir = join(dir, 'out')): string {
  const file = join(dir, `p${Math.random().toString(16).slice(2, 8)}.yml`);
  writeFileSync(file, `name: p\nstate: ${join(dir, 's.db')}\nsource: ${source}\nsink: { type: jsonl, dir: ${sinkDir} }\n`);
  return file;
}

describe('pipe validate --ping, local directories', () => {
  it.each(['files', 'tail'])('%s source and jsonl sink: ok lines, exit 0; missing directory: FAILED, exit 2', async (type) => {
    const dir = tempDir();
    mkdirSync(join(dir, 'logs'));
    const good = pipeline(dir, `{ type: ${type}, path: ${join(dir, 'logs')} }`);
    const ok = await runCli(['validate', '--ping', good]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`  source ${type}: ok: directory ${join(dir, 'logs')} is readable`);
    expect(ok.stdout).toContain(`  sink jsonl: ok: ${join(dir, 'out')} does not exist yet; ${dir} is writable, so it can be created`);
    const bad = await runCli(['validate', '--ping', pipeline(dir, `{ type: ${type}, path: ${join(dir, 'nope')} }`)]);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toContain(`  source ${type}: FAILED: ${join(dir, 'nope')}: does not exist [PIPE_SOURCE_FAILED]`);
  });

  it('a sink directory that cannot be created fails the sink line only; without --ping nothing is checked', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'logs'));
    const blocker = join(dir, 'file');
    writeFileSync(blocker, '');
    const file = pipeline(dir, `{ type: files, path: ${join(dir, 'logs')} }`, join(blocker, 'out'));
    const r = await runCli(['validate', '--ping', file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('  source files: ok:');
    expect(r.stdout).toContain(`  sink jsonl: FAILED: ${join(blocker, 'out')}: ${blocker} is not a directory [PIPE_SINK_FAILED]`);
    expect((await runCli(['validate', file])).code).toBe(0);
  });

  it.skipIf(process.getuid?.() === 0)('an unreadable directory', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'logs'));
    chmodSync(join(dir, 'logs'), 0o000);
    const r = await runCli(['validate', '--ping', pipeline(dir, `{ type: files, path: ${join(dir, 'logs')} }`)]);
    chmodSync(join(dir, 'logs'), 0o755);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/source files: FAILED: .*logs: not readable by this user/);
  });
});

describe('pipe validate --ping, s3', () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startS3();
    await s3.createBucket('trail');
    await s3.put('trail', 'AWSLogs/a.json', '{}');
  });
  afterAll(() => s3.close());

  it('lists one key of an existing bucket; a missing bucket fails with its name', async () => {
    const dir = tempDir();
    const src = (bucket: string) => `{ type: s3, bucket: ${bucket}, prefix: AWSLogs/, endpoint: "${s3.url}", forcePathStyle: true, maxAttempts: 1 }`;
    const ok = await runCli(['validate', '--ping', pipeline(dir, src('trail'))], { env: AWS_TEST_ENV });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain('  source s3: ok: s3://trail/AWSLogs/ can be listed (first key AWSLogs/a.json)');
    const bad = await runCli(['validate', '--ping', pipeline(dir, src('missing-bucket'))], { env: AWS_TEST_ENV });
    expect(bad.code).toBe(2);
    expect(bad.stdout).toMatch(/source s3: FAILED: listing s3:\/\/missing-bucket\/AWSLogs\/: bucket missing-bucket does not exist \(NoSuchBucket\) \[PIPE_SOURCE_FAILED\]/);
    expect(bad.stdout).toContain('  sink jsonl: ok:');
  });
});

describe('pipe validate --ping, cloudwatch', () => {
  let cw: CloudWatchLogsServer;
  beforeAll(async () => {
    cw = await new CloudWatchLogsServer().start();
    cw.createGroup('/app');
    cw.createGroup('/app-2');
    cw.createGroup('/aws/lambda/a');
  });
  afterAll(() => cw.close());

  it('finds named groups and prefixes; a missing group or an empty prefix fails', async () => {
    const dir = tempDir();
    const src = (opts: string) => `{ type: cloudwatch, endpoint: "${cw.url}", region: us-east-1, ${opts} }`;
    const ok = await runCli(['validate', '--ping', pipeline(dir, src('logGroup: [/app, /app-2], logGroupPrefix: /aws/lambda/'))], { env: AWS_TEST_ENV });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain('  source cloudwatch: ok: log groups /app, /app-2, /aws/lambda/* (1 groups)');
    const missing = await runCli(['validate', '--ping', pipeline(dir, src('logGroup: /ap'))], { env: AWS_TEST_ENV });
    expect(missing.code).toBe(2);
    expect(missing.stdout).toContain('  source cloudwatch: FAILED: cloudwatch: log group /ap does not exist');
    const prefix = await runCli(['validate', '--ping', pipeline(dir, src('logGroupPrefix: /nothing/'))], { env: AWS_TEST_ENV });
    expect(prefix.code).toBe(2);
    expect(prefix.stdout).toContain('  source cloudwatch: FAILED: cloudwatch: no log group name starts with /nothing/');
  });
});
