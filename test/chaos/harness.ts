/**
 * The chaos harness: for one source at a time, the real CLI in a child process over generated data
 * (and, for s3 and cloudwatch, a server that injects faults), SIGKILLed at seeded random instants
 * round after round, restarted, then run to completion; the sink is compared with the truth.
 *
 * Seeded: PIPE_CHAOS_SEED replays a run (every random choice, kill delays and faults included, comes
 * from it); PIPE_CHAOS_ROUNDS sets the rounds per source. Timing still varies with the machine,
 * so a replay hits the same instants, not necessarily the same instructions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { collect, ROOT, spawnCli, type CliResult } from '../helpers/cli.js';
import { CloudWatchLogsServer, type StoredEvent } from '../helpers/cloudwatch-server.js';
import { cloudTrailEvent, prng } from '../helpers/data.js';
import { AWS_TEST_ENV, cloudTrailBody, cloudTrailKey, S3Proxy, startS3, type Fault } from '../helpers/s3.js';

export type ChaosSource = 'files' | 's3' | 'cloudwatch' | 'tail';
export const SOURCES: ChaosSource[] = ['files', 's3', 'cloudwatch', 'tail'];

export interface ChaosOptions {
  seed: number;
  rounds: number;
  /** A fresh directory for this source. */
  dir: string;
  log?: (line: string) => void;
}

export interface ChaosReport {
  source: ChaosSource;
  seed: number;
  rounds: number;
  /** Runs that ended by our SIGKILL (the others finished before the kill). */
  killed: number;
  expected: number;
  rows: number;
  missing: number;
  duplicated: number;
  malformed: number;
  unexpected: number;
  /** Row counts visible after each kill that had a duplicate (must stay empty). */
  duplicatesAfterKill: number;
  /** Non-zero exits that were neither our kill nor 0 (stderr kept for the message). */
  badExits: string[];
  /** A few examples of each problem. */
  examples: Record<string, string[]>;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every line of every committed chunk: parsed rows and lines that are not a JSON object with _id/_time/_source. */
export function scanSink(dir: string): { rows: Array<Record<string, unknown>>; malformed: string[] } {
  const rows: Array<Record<string, unknown>> = [];
  const malformed: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) {
        if (name !== '.pipe-tmp' && name !== '_errors') walk(p);
        continue;
      }
      if (!/\.jsonl(\.gz)?$/.test(name)) continue;
      let text: string;
      try {
        const buf = readFileSync(p);
        text = name.endsWith('.gz') ? gunzipSync(buf).toString('utf8') : buf.toString('utf8');
      } catch (err) {
        malformed.push(`${p}: ${(err as Error).message}`);
        continue;
      }
      if (text !== '' && !text.endsWith('\n')) malformed.push(`${p}: no final newline`);
      for (const line of text.split('\n')) {
        if (!line) continue;
        try {
          const row = JSON.parse(line) as Record<string, unknown>;
          if (typeof row !== 'object' || row === null || Array.isArray(row) || typeof row._id !== 'string'
            || typeof row._time !== 'string' || Number.isNaN(Date.parse(row._time)) || typeof row._source !== 'string') {
            malformed.push(`${p}: ${line.slice(0, 200)}`);
            continue;
          }
          rows.push(row);
        } catch {
          malformed.push(`${p}: ${line.slice(0, 200)}`);
        }
      }
    }
  };
  walk(dir);
  return { rows, malformed };
}

/** A deterministic number in [0, 1) from the seed and a label (for decisions taken in callbacks whose order varies). */
function hashRandom(seed: number, label: string): number {
  return createHash('sha256').update(`${seed}:${label}`).digest().readUInt32BE(0) / 2 ** 32;
}

interface Setup {
  /** Runs before each round (new data arriving); returns nothing. */
  beforeRound(round: number): Promise<void> | void;
  args: string[];
  env: Record<string, string>;
  /** Kill delay range after spawn, ms. */
  killWindow: [number, number];
  /** The final run to completion; resolves when done. */
  finish(): Promise<CliResult>;
  /** The truth: every expected _id (or a key from keyOf) exactly once. */
  truth(): string[];
  keyOf(row: Record<string, unknown>): string | undefined;
  close(): Promise<void>;
}

export async function runChaos(source: ChaosSource, opts: ChaosOptions): Promise<ChaosReport> {
  const { seed, rounds, dir } = opts;
  const log = opts.log ?? (() => {});
  const random = prng(seed);
  const out = join(dir, 'out');
  const setup = await SETUPS[source](dir, out, seed, random, rounds);
  const report: ChaosReport = {
    source, seed, rounds, killed: 0, expected: 0, rows: 0, missing: 0, duplicated: 0, malformed: 0, unexpected: 0,
    duplicatesAfterKill: 0, badExits: [], examples: {},
  };
  try {
    for (let round = 0; round < rounds; round++) {
      await setup.beforeRound(round);
      const child = spawnCli(setup.args, { env: setup.env });
      child.stdin!.end();
      const done = collect(child);
      const [lo, hi] = setup.killWindow;
      const delay = lo + Math.floor(random() * (hi - lo));
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      const r = await done;
      clearTimeout(timer);
      if (r.signal === 'SIGKILL') report.killed++;
      else if (r.code !== 0 && !(source === 'tail' && r.code === 130)) report.badExits.push(`round ${round}: exit ${r.code} ${r.signal ?? ''}\n${r.stderr.slice(-2000)}`);
      const { rows } = scanSink(out);
      const ids = new Set(rows.map((x) => String(x._id)));
      if (ids.size !== rows.length) report.duplicatesAfterKill++;
      log(`${source} round ${round}: kill after ${delay} ms → ${r.signal ?? `exit ${r.code}`}, ${rows.length} rows`);
    }
    const final = await setup.finish();
    if (final.code !== 0 && !(source === 'tail' && final.code === 130)) report.badExits.push(`final: exit ${final.code} ${final.signal ?? ''}\n${final.stderr.slice(-2000)}`);
    const { rows, malformed } = scanSink(out);
    const truth = setup.truth();
    const want = new Set(truth);
    const counts = new Map<string, number>();
    const unexpected: string[] = [];
    for (const row of rows) {
      const key = setup.keyOf(row);
      if (key === undefined || !want.has(key)) {
        unexpected.push(JSON.stringify(row).slice(0, 200));
        continue;
      }
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const missing = truth.filter((k) => !counts.has(k));
    const duplicated = [...counts].filter(([, n]) => n > 1).map(([k, n]) => `${k} ×${n}`);
    Object.assign(report, {
      expected: truth.length, rows: rows.length, missing: missing.length, duplicated: duplicated.length,
      malformed: malformed.length, unexpected: unexpected.length,
      examples: { missing: missing.slice(0, 5), duplicated: duplicated.slice(0, 5), malformed: malformed.slice(0, 5), unexpected: unexpected.slice(0, 5) },
    });
    log(`${source}: ${JSON.stringify({ ...report, examples: undefined })}`);
    return report;
  } finally {
    await setup.close();
  }
}

/** Runs the CLI to its end (a bounded source). */
async function runToEnd(args: string[], env: Record<string, string>): Promise<CliResult> {
  const child = spawnCli(args, { env });
  child.stdin!.end();
  return collect(child);
}

type SetupFn = (dir: string, out: string, seed: number, random: () => number, rounds: number) => Promise<Setup>;

const ctPipeline = (dir: string, name: string, source: string, sink: string): string => {
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, `name: ${name}
state: ${join(dir, 'state.db')}
source: ${source}
mappers: [cloudtrail]
sink: { type: jsonl, dir: ${join(dir, 'out')}, ${sink} }
`);
  return file;
};

const SETUPS: Record<ChaosSource, SetupFn> = {
  /** Gzip CloudTrail deliveries in a directory; a few new ones arrive before each round. */
  async files(dir, _out, _seed, random) {
    const input = join(dir, 'in');
    const ids: string[] = [];
    let next = 0;
    const add = (n: number): void => {
      for (let k = 0; k < n; k++, next++) {
        const events = 50 + Math.floor(random() * 250);
        const records = Array.from({ length: events }, (_, i) => cloudTrailEvent(next, i));
        ids.push(...records.map((r) => r.eventID as string));
        const p = join(input, `AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/${String(1 + (next % 28)).padStart(2, '0')}/ct_${String(next).padStart(5, '0')}.json.gz`);
        mkdirSync(join(p, '..'), { recursive: true });
        writeFileSync(p, gzipSync(JSON.stringify({ Records: records }), { level: 1 }));
      }
    };
    add(30);
    const gzip = random() < 0.5;
    const file = ctPipeline(dir, 'chaos-files', `{ type: files, path: ${input}, concurrency: 3 }`,
      `maxRows: ${100 + Math.floor(random() * 400)}, flushInterval: 50ms, gzip: ${gzip}, partition: ${random() < 0.5 ? 'hour' : 'none'}`);
    const args = ['run', file, '--no-progress'];
    return {
      beforeRound: (round) => (round > 0 ? add(10) : undefined),
      args, env: {}, killWindow: [150, 1200],
      finish: () => runToEnd(args, {}),
      truth: () => ids,
      keyOf: (row) => (typeof row.eventID === 'string' && row.eventID === row._id ? row.eventID : undefined),
      close: async () => {},
    };
  },

  /** CloudTrail objects in fauxqs behind the fault proxy: 503 SlowDown and resets mid-body on first attempts. */
  async s3(dir, _out, seed, random) {
    const s3 = await startS3();
    const proxy = await S3Proxy.start(s3.url);
    const bucket = 'chaos';
    await s3.createBucket(bucket);
    const ids: string[] = [];
    let next = 0;
    const add = async (n: number): Promise<void> => {
      const objects = [];
      for (let k = 0; k < n; k++, next++) {
        const d = cloudTrailBody(next, 50 + Math.floor(random() * 250));
        ids.push(...d.ids);
        // Keys in delivery order, as CloudTrail writes them: new objects sort after the listing mark.
        objects.push({ key: cloudTrailKey('111111111111', 'us-east-1', 1 + Math.floor(next / 200), next % 200), body: d.body });
      }
      await s3.putMany(bucket, objects);
    };
    await add(30);
    // Faults are decided by a hash of (seed, request), not by the order requests arrive in.
    const attempts = new Map<string, number>();
    let lists = 0;
    proxy.fault = (r): Fault | undefined => {
      if (r.op === 'list') return hashRandom(seed, `list ${lists++}`) < 0.15 ? { status: 503, code: 'SlowDown' } : undefined;
      if (r.op !== 'get') return undefined;
      const n = (attempts.get(r.key) ?? 0) + 1;
      attempts.set(r.key, n);
      if (n > 2) return undefined; // well under maxAttempts: faults delay, never fail, an object
      const x = hashRandom(seed, `${r.key} ${n}`);
      if (x < 0.12) return { status: 503, code: 'SlowDown' };
      if (x < 0.22) return { resetAfter: 200 + Math.floor(hashRandom(seed, `${r.key} ${n} at`) * 2000) };
      return undefined;
    };
    const file = ctPipeline(dir, 'chaos-s3',
      `{ type: s3, bucket: ${bucket}, endpoint: "\${S3_ENDPOINT}", forcePathStyle: true, settle: 0s, layout: cloudtrail, prefix: AWSLogs/, concurrency: 4 }`,
      `maxRows: ${100 + Math.floor(random() * 400)}, flushInterval: 50ms`);
    const env = { ...AWS_TEST_ENV, S3_ENDPOINT: proxy.url, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    const args = ['run', file, '--no-progress'];
    return {
      beforeRound: (round) => (round > 0 ? add(10) : undefined),
      args, env, killWindow: [500, 3000],
      finish: () => runToEnd(args, env),
      truth: () => ids,
      keyOf: (row) => (typeof row.eventID === 'string' && row.eventID === row._id ? row.eventID : undefined),
      close: async () => {
        await proxy.close();
        await s3.close();
      },
    };
  },

  /** Events over the last two days in several groups and streams, with throttling and 503s. */
  async cloudwatch(dir, _out, seed, _random, rounds) {
    const s = await new CloudWatchLogsServer().start();
    s.pageSize = 20;
    const now = Date.now();
    const H = 3_600_000;
    const events: StoredEvent[] = [];
    const per = 150 + 60 * rounds;
    for (const [g, group] of ['/chaos/a', '/chaos/b', '/chaos/c'].entries()) {
      for (const stream of ['1', '2']) {
        events.push(...s.putEvents(group, stream, Array.from({ length: per }, (_, i) => ({
          timestamp: Math.floor(now - 47 * H + g * H + (i * 44 * H) / per), message: `${group} ${stream} #${i}`,
        }))));
      }
    }
    s.fault = (ctx) => {
      if (ctx.operation !== 'FilterLogEvents') return undefined;
      const x = hashRandom(seed, `cw ${ctx.n}`);
      return x < 0.1 ? 'throttle' : x < 0.13 ? 'unavailable' : undefined;
    };
    const file = join(dir, 'cw.yml');
    writeFileSync(file, `name: chaos-cw
state: ${join(dir, 'state.db')}
source: { type: cloudwatch, endpoint: ${s.url}, logGroupPrefix: /chaos/, startTime: 50h, window: 2h, lookback: 5m, maxRequestsPerSecond: 2000 }
sink: { type: jsonl, dir: ${join(dir, 'out')}, flushInterval: 20ms, maxRows: 60 }
`);
    const env = { ...AWS_TEST_ENV, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    const args = ['run', file, '--no-progress'];
    return {
      beforeRound: () => {},
      args, env, killWindow: [400, 2500],
      finish: () => runToEnd(args, env),
      truth: () => events.map((e) => e.eventId),
      keyOf: (row) => String(row._id),
      close: () => s.close(),
    };
  },

  /** A writer child appends numbered lines to a file the whole time; `pipe run` on a tail pipeline. */
  async tail(dir, out) {
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    const app = join(logs, 'app.log');
    writeFileSync(app, '');
    const writer: ChildProcess = spawn(process.execPath, [join(ROOT, 'test/sources/tail-writer.mjs'), app, '1500'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let wout = '';
    writer.stdout!.setEncoding('utf8').on('data', (d: string) => (wout += d));
    const exited = new Promise((r) => writer.on('exit', r));
    const file = join(dir, 'tail.yml');
    writeFileSync(file, `name: chaos-tail
state: ${join(dir, 'state.db')}
source: { type: tail, path: ${logs}, include: ["app.log"], startAt: beginning }
sink: { type: jsonl, dir: ${out}, flushInterval: 50ms, maxRows: 300 }
`);
    const args = ['run', file, '--no-progress'];
    let written = -1;
    return {
      beforeRound: async () => {
        await sleep(100);
      },
      args, env: {}, killWindow: [400, 1600],
      async finish() {
        writer.kill('SIGTERM');
        await exited;
        written = (JSON.parse(wout.split('\n').find((l) => l.startsWith('{'))!) as { lines: number }).lines;
        // --once: a single pass over what is there, then exit.
        return runToEnd([...args, '--once'], {});
      },
      truth: () => Array.from({ length: written }, (_, i) => `line ${i}`),
      keyOf: (row) => {
        const m = /^(line \d+) \d+\.\d{3}$/.exec(String(row.message));
        return m ? m[1] : undefined;
      },
      close: async () => {
        if (writer.exitCode === null && writer.signalCode === null) {
          writer.kill('SIGKILL');
          await exited;
        }
      },
    };
  },
};

/** The seed of this run: PIPE_CHAOS_SEED, or a fresh one (printed on failure). */
export function chaosSeed(): number {
  const env = process.env.PIPE_CHAOS_SEED;
  return env !== undefined && env !== '' ? Number(env) : Math.floor(Math.random() * 2 ** 31);
}
