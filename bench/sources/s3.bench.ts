/**
 * s3 source: the same CloudTrail deliveries collected by the real CLI in pairs, from local files (the
 * baseline: the same loader, mapper and sink with no network) and from an S3-compatible server
 * (fauxqs on 127.0.0.1, in this process while the CLI runs in its own), through the AWS SDK. The
 * ratio is what reading from S3 costs on top of reading the same bytes from disk. MB are the
 * uncompressed JSON; rows are events.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildApp } from 'fauxqs';
import { generateEvents } from '../mappers/cloudtrail.bench.js';
import { median } from '../e2e/pipeline.bench.js';
import { result, runIfMain, type BenchResult } from '../mappers/harness.js';

const FILES = 40;
const PER_FILE = 2_500;
/** Pairs of runs (files, then s3, back to back); the ratio is the median of the pairs' ratios. */
const ROUNDS = Math.max(2, Number(process.env.PIPE_BENCH_REPS ?? 3));
const ROOT = resolve(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin/pipe.js');
const AWS_ENV = { AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };

function put(url: URL, path: string, body: Buffer): Promise<void> {
  return new Promise((res, rej) => {
    const req = request({ host: url.hostname, port: url.port, method: 'PUT', path, headers: { 'content-length': body.length, 'content-type': 'application/octet-stream' } }, (r) => {
      r.resume();
      r.on('end', () => (r.statusCode === 200 ? res() : rej(new Error(`PUT ${path}: HTTP ${r.statusCode}`))));
    });
    req.on('error', rej);
    req.end(body);
  });
}

/** One `pipe run` of a fresh pipeline; wall seconds. */
function runOnce(work: string, name: string, source: string, env: Record<string, string>): Promise<number> {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'pipeline.yml');
  writeFileSync(file, `name: ${name}\nstate: ${join(dir, 'state.db')}\nsource: ${source}\nmappers: [cloudtrail]\nsink: { type: jsonl, dir: ${join(dir, 'out')} }\n`);
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [BIN, 'run', file, '--no-progress'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((res, rej) => child.on('close', (code) => {
    if (code !== 0 || !stderr.includes(`${FILES} artifacts`)) rej(new Error(`${name}: pipe exited ${code}: ${stderr}`));
    else res(Number(process.hrtime.bigint() - t0) / 1e9);
  }));
}

/**
 * Writes the deliveries to disk and to the server. Nothing of them stays referenced: the server
 * runs in this process, and a heap holding 100 MB of events would slow its collections, which
 * would be charged to the s3 source.
 */
async function upload(url: URL, work: string): Promise<{ rows: number; bytes: number }> {
  const events = generateEvents(FILES * PER_FILE, 5);
  let bytes = 0;
  for (let f = 0; f < FILES; f++) {
    const slice = events.slice(f * PER_FILE, (f + 1) * PER_FILE);
    bytes += slice.reduce((n, e) => n + Buffer.byteLength(e), 0);
    const body = gzipSync(`{"Records":[${slice.join(',')}]}`);
    const key = `AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/123456789012_CloudTrail_us-east-1_20240301T${String(f).padStart(4, '0')}Z_bench.json.gz`;
    const path = join(work, 'data', key);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, body);
    await put(url, `/bench/${key}`, body);
  }
  return { rows: events.length, bytes };
}

export async function run(): Promise<BenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'pipe-bench-s3-'));
  const app = buildApp({ logger: false });
  try {
    const url = new URL(await app.listen({ port: 0, host: '127.0.0.1' }));
    await put(url, '/bench', Buffer.alloc(0));
    const { rows, bytes } = await upload(url, work);
    const pairs: Array<{ files: number; s3: number }> = [];
    for (let r = 0; r < ROUNDS; r++) {
      const files = await runOnce(work, 'run-files', `{ type: files, path: ${join(work, 'data')}, concurrency: 8 }`, {});
      const s3 = await runOnce(work, 'run-s3', `{ type: s3, bucket: bench, layout: cloudtrail, endpoint: "${url.origin}", forcePathStyle: true, concurrency: 8 }`, AWS_ENV);
      pairs.push({ files, s3 });
    }
    // Like the end-to-end rows: medians, and the median of the per-pair ratios (each pair ran
    // back to back, under the same load); this machine's speed drifts between pairs.
    return {
      ...result('source s3 (fauxqs) vs files, CLI end to end', rows, bytes, median(pairs.map((p) => p.s3)), median(pairs.map((p) => p.files))),
      ratio: Math.round(median(pairs.map((p) => p.s3 / p.files)) * 100) / 100,
    };
  } finally {
    await app.close();
    rmSync(work, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
