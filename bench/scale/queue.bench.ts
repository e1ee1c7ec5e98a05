/**
 * Scale out: the same CloudTrail deliveries, announced on an SQS queue, collected by 1, 2 and 3
 * `pipe run --once` workers sharing a real PostgreSQL, against one process with SQLite state (the
 * baseline) on the same queue-mode pipeline. fauxqs serves S3 and SQS from this process; the
 * workers are real CLI processes. Also counts PostgreSQL transactions per committed chunk, read
 * from pg_stat_database (every statement pipe sends is its own transaction or part of one).
 *
 * On a 2-core machine the workers share the two cores with each other, with PostgreSQL and with
 * the S3/SQS server, so this shows the coordination costs, not the scaling a fleet of machines gets.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { startPostgres, type TestPostgres } from '../../test/helpers/postgres.js';
import { startS3, type S3Server } from '../../test/helpers/s3.js';
import { queues, s3Notification, type Queues } from '../../test/helpers/sqs.js';
import { generateEvents } from '../mappers/cloudtrail.bench.js';
import { result, type BenchResult } from '../mappers/harness.js';

const OBJECTS = 120;
const PER_OBJECT = 500;
const ROOT = resolve(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin/pipe.js');
const AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
};

export interface ScaleResult extends BenchResult {
  /** PostgreSQL transactions per committed chunk (shared-state runs only). */
  pgTransactionsPerChunk?: number;
}

function runWorker(file: string, env: Record<string, string>): Promise<number | null> {
  const child = spawn(process.execPath, [BIN, 'run', '--once', '--no-progress', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((res) => child.on('close', (code) => {
    if (code !== 0) process.stderr.write(stderr);
    res(code);
  }));
}

async function transactions(pg: TestPostgres, db: string): Promise<number> {
  // Statistics reach pg_stat_database within a second of a backend's transactions.
  await new Promise((r) => setTimeout(r, 1500));
  const r = await pg.sql(`SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = '${db}'`);
  return Number(r.rows[0]?.n ?? 0);
}

async function round(s3: S3Server, q: Queues, pg: TestPostgres | undefined, workers: number, keys: Array<{ key: string; etag: string; size: number }>, tag: string): Promise<{ seconds: number; chunks: number; tx?: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'pipe-bench-scale-'));
  try {
    const { url: queueUrl } = await q.create(`bench-${tag}`, { VisibilityTimeout: '60' });
    for (const k of keys) await q.send(queueUrl, s3Notification('bench-trail', k.key, k.etag, k.size));
    const db = `bench_${tag}`;
    const state = pg ? await pg.createDb(db) : join(dir, 'state.db');
    const file = join(dir, 'p.yml');
    writeFileSync(file, `name: bench
state: ${state}
source: { type: s3, bucket: bench-trail, queue: "${queueUrl}", visibilityTimeout: 60s, endpoint: "${s3.url}", forcePathStyle: true }
mappers: [cloudtrail]
sink: { type: jsonl, dir: ${join(dir, 'out')} }
`);
    const env = { ...AWS_ENV, AWS_ENDPOINT_URL_SQS: s3.url };
    const before = pg ? await transactions(pg, db) : 0;
    const t0 = process.hrtime.bigint();
    const codes = await Promise.all(Array.from({ length: workers }, () => runWorker(file, env)));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (codes.some((c) => c !== 0)) throw new Error(`a worker exited with ${codes.join(', ')}`);
    const chunks = readdirSync(join(dir, 'out')).filter((f) => f.endsWith('.jsonl')).length;
    const tx = pg ? (await transactions(pg, db)) - before : undefined;
    return { seconds, chunks, ...(tx !== undefined ? { tx } : {}) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<ScaleResult[]> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const [s3, pg] = await Promise.all([startS3(), startPostgres()]);
  const q = queues(s3.url);
  try {
    await s3.createBucket('bench-trail');
    const events = generateEvents(OBJECTS * PER_OBJECT);
    let bytes = 0;
    const keys: Array<{ key: string; etag: string; size: number }> = [];
    for (let i = 0; i < OBJECTS; i++) {
      const text = `{"Records":[${events.slice(i * PER_OBJECT, (i + 1) * PER_OBJECT).join(',')}]}`;
      bytes += Buffer.byteLength(text);
      const body = gzipSync(text, { level: 1 });
      const key = `AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/01/object-${i}.json.gz`;
      keys.push({ key, etag: await s3.put('bench-trail', key, body), size: body.length });
    }
    const rows = OBJECTS * PER_OBJECT;
    // Interleaved, best of two: the baseline and each worker count share the machine's moods.
    const best = new Map<string, { seconds: number; chunks: number; tx?: number }>();
    let n = 0;
    for (let r = 0; r < 2; r++) {
      for (const [name, workers, shared] of [['sqlite', 1, false], ['pg1', 1, true], ['pg2', 2, true], ['pg3', 3, true]] as const) {
        const out = await round(s3, q, shared ? pg : undefined, workers, keys, `${name}_${n++}`);
        if (!best.has(name) || out.seconds < best.get(name)!.seconds) best.set(name, out);
      }
    }
    const base = best.get('sqlite')!;
    const results: ScaleResult[] = [result('scale: 1 process, SQLite state', rows, bytes, base.seconds, base.seconds)];
    for (const [name, label] of [['pg1', '1 worker'], ['pg2', '2 workers'], ['pg3', '3 workers']] as const) {
      const b = best.get(name)!;
      const perChunk = b.tx !== undefined && b.chunks ? Math.round((b.tx / b.chunks) * 10) / 10 : undefined;
      results.push({
        ...result(`scale: ${label}, PostgreSQL${perChunk !== undefined ? ` (${perChunk} tx/chunk)` : ''}`, rows, bytes, b.seconds, base.seconds),
        ...(perChunk !== undefined ? { pgTransactionsPerChunk: perChunk } : {}),
      });
    }
    return results;
  } finally {
    q.close();
    await s3.close();
    await pg.stop();
  }
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  run().then((out) => { for (const r of out) console.log(JSON.stringify(r)); }, (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
