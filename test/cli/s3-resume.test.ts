/**
 * Mid-object resumption through the real CLI: a run SIGKILLed (failpoint right after a commit) in
 * the middle of a large object, then run again. An uncompressed line-based object is reopened with
 * a ranged GET at the line boundary stored with the last commit, pinned to the ETag, so the rerun
 * downloads only the remainder; a VPC flow object resumed that way still maps by its header line
 * (kept in the stored resume point), on the main thread and in worker threads; a gzip object is read
 * again from byte 0 and its committed records skipped; a local file resumes with a read at the
 * stored offset. Every row ends up in the sink exactly once.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readSink, runCli, type CliResult } from '../helpers/cli.js';
import { AWS_TEST_ENV, type S3Proxy, strayStderrLines, type ProxiedRequest, type S3Server } from '../helpers/s3.js';
import { s3Suite } from '../helpers/s3-suite.js';
import { tempDir } from '../helpers/tmp.js';

let s3: S3Server;
let proxy: S3Proxy;

s3Suite((servers) => ({ s3, proxy } = servers));

const env = (extra: Record<string, string> = {}): Record<string, string> => ({ ...AWS_TEST_ENV, S3_ENDPOINT: proxy.url, ...extra });

/** Killed right after the second commit: two chunks of `maxRows` rows are committed, the rest is not. */
const KILL = { PIPE_FAILPOINT: 'sink:after-commit@2' };
const MAX_ROWS = 4000;

async function pipe(args: string[], extra: Record<string, string> = {}): Promise<CliResult> {
  const r = await runCli(args, { env: env(extra) });
  expect(strayStderrLines(r.stderr), r.stderr).toEqual([]);
  return r;
}

function pipeline(dir: string, name: string, rest: string, source = `{ type: s3, bucket: ${name}, endpoint: "\${S3_ENDPOINT}", forcePathStyle: true, settle: 0s }`): string {
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, `name: ${name}
state: ${join(dir, 'state.db')}
source: ${source}
${rest}
sink: { type: jsonl, dir: ${join(dir, 'out')}, maxRows: ${MAX_ROWS}, flushInterval: 30s }
`);
  return file;
}

/** `n` lines of exactly `width` bytes (newline included): line i starts at byte i × width. */
function fixedLines(n: number, width: number): Buffer {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const head = `line ${String(i).padStart(8, '0')} `;
    parts.push(head.padEnd(width - 1, 'x') + '\n');
  }
  return Buffer.from(parts.join(''));
}

/** A VPC flow log file with its fields in an unusual order, so that only its header line maps it. */
const VPC_HEADER = 'srcaddr dstaddr bytes version account-id interface-id srcport dstport protocol packets start end action log-status';
function vpcFile(n: number): Buffer {
  const lines = [VPC_HEADER];
  for (let i = 0; i < n; i++) {
    lines.push(`10.0.${(i >> 8) & 255}.${i & 255} 10.1.0.1 ${i} 5 012345678901 eni-0a1b2c3d ${1024 + (i % 50000)} 443 6 10 1709251200 1709251260 ACCEPT OK`);
  }
  return Buffer.from(lines.join('\n') + '\n');
}

interface Status {
  inProgress: Array<{ uri: string; position: number; rows: number; resumeAt?: { byte: number; record: number; head?: string } }>;
}

async function status(file: string): Promise<Status> {
  return JSON.parse((await pipe(['status', file, '--json'])).stdout) as Status;
}

/** Runs once with the failpoint (killed mid-object), returns what the state says of the object. */
async function killMidway(file: string, extraArgs: string[] = []): Promise<Status['inProgress'][number]> {
  const killed = await pipe(['run', file, '--no-progress', ...extraArgs], KILL);
  expect(killed.signal, killed.stderr).toBe('SIGKILL');
  const s = await status(file);
  expect(s.inProgress).toHaveLength(1);
  return s.inProgress[0]!;
}

const rangeStart = (r: ProxiedRequest): number => Number(/^bytes=(\d+)-$/.exec(String(r.headers.range ?? 'bytes=0-'))?.[1]);

function expectEachOnce(values: unknown[], n: number): void {
  const seen = new Set(values);
  expect({ distinct: seen.size, total: values.length }).toEqual({ distinct: n, total: n });
}

describe('s3 mid-object resumption', () => {
  it('an uncompressed object resumes with a ranged GET at the stored line boundary and downloads only the rest', async () => {
    const lines = 80_000;
    const width = 100;
    const body = fixedLines(lines, width);
    await s3.createBucket('plain');
    const etag = await s3.put('plain', 'logs/app.log', body);
    const dir = tempDir('rng-');
    const file = pipeline(dir, 'plain', 'loader: [lines]');

    const state = await killMidway(file);
    expect(state.position).toBeGreaterThanOrEqual(2 * MAX_ROWS);
    expect(state.position).toBeLessThan(lines);
    // Batches end on the loader's line boundaries: the committed position is itself the resume point.
    const at = state.resumeAt!;
    expect(at).toEqual({ byte: state.position * width, record: state.position });

    proxy.reset();
    const r = await pipe(['run', file, '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`1 artifacts, ${(lines - state.position).toLocaleString('en-US')} rows`);
    const gets = proxy.requests.filter((x) => x.op === 'get');
    expect(gets).toHaveLength(1);
    const start = rangeStart(gets[0]!);
    // Non-zero, on a line boundary, pinned to the listed version, and only the rest was sent.
    expect(start).toBe(at.byte);
    expect(body[start - 1]).toBe(0x0a);
    expect(gets[0]!.headers['if-match']).toBe(`"${etag}"`);
    expect(gets[0]!.sent).toBe(body.length - state.position * width);

    const rows = readSink(join(dir, 'out'));
    expectEachOnce(rows.map((row) => row.message), lines);
    expectEachOnce(rows.map((row) => row._id), lines);
  });

  it.each([[[]], [['--threads', '2']]])('a VPC flow object resumed by range still maps by its header line (%j)', async (threads) => {
    const flows = 60_000;
    const bucket = threads.length ? 'vpc-threads' : 'vpc';
    const body = vpcFile(flows);
    await s3.createBucket(bucket);
    await s3.put(bucket, 'flows/eni.log', body);
    const dir = tempDir('rng-');
    const file = pipeline(dir, bucket, 'mappers: [vpcflow]');

    const state = await killMidway(file, threads);
    expect(state.resumeAt).toEqual({ byte: expect.any(Number) as number, record: state.position, head: VPC_HEADER });
    expect(body[state.resumeAt!.byte - 1]).toBe(0x0a);

    proxy.reset();
    const r = await pipe(['run', file, '--no-progress', ...threads]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/row errors/);
    const gets = proxy.requests.filter((x) => x.op === 'get');
    expect(gets).toHaveLength(1);
    expect(rangeStart(gets[0]!)).toBe(state.resumeAt!.byte);
    expect(gets[0]!.sent).toBe(body.length - state.resumeAt!.byte);

    const rows = readSink(join(dir, 'out'));
    // Mapped by the header: `bytes` is the flow's number, the address first, the version a number.
    expectEachOnce(rows.map((row) => row.bytes), flows);
    const wrong = rows.filter((row) => {
      const i = row.bytes as number;
      return row.srcaddr !== `10.0.${(i >> 8) & 255}.${i & 255}` || row.version !== 5 || row.account_id !== '012345678901';
    });
    expect(wrong).toEqual([]);
  });

  it('a gzip object is read again from byte 0 and its committed records skipped', async () => {
    const lines = 80_000;
    const body = gzipSync(fixedLines(lines, 60), { level: 1 });
    await s3.createBucket('zipped');
    await s3.put('zipped', 'logs/app.log.gz', body);
    const dir = tempDir('rng-');
    const file = pipeline(dir, 'zipped', 'loader: [lines]');

    const state = await killMidway(file);
    expect(state.resumeAt).toBeUndefined();

    proxy.reset();
    const r = await pipe(['run', file, '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`1 artifacts, ${(lines - state.position).toLocaleString('en-US')} rows`);
    const gets = proxy.requests.filter((x) => x.op === 'get');
    expect(gets.map(rangeStart)).toEqual([0]);
    expect(gets[0]!.sent).toBe(body.length);
    expectEachOnce(readSink(join(dir, 'out')).map((row) => row.message), lines);
  });
});

describe('files mid-file resumption', () => {
  it('a local file resumes with a read from the stored offset', async () => {
    const lines = 120_000;
    const width = 80;
    const dir = tempDir('rng-');
    const input = join(dir, 'app.log');
    writeFileSync(input, fixedLines(lines, width));
    const file = pipeline(dir, 'local', 'loader: [lines]', `{ type: files, path: ${input} }`);

    const state = await killMidway(file);
    const at = state.resumeAt!;
    expect(at.byte).toBe(at.record * width);
    expect(at.record).toBeGreaterThan(0);

    const r = await runCli(['run', file, '--no-progress', '--log-format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => 'bytes_in' in l)!;
    expect(summary.rows).toBe(lines - state.position);
    // Only the bytes after the stored offset were read.
    expect(summary.bytes_in).toBe(lines * width - at.byte);
    expectEachOnce(readSink(join(dir, 'out')).map((row) => row.message), lines);
  });
});
