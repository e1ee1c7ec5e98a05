/**
 * The `cloudwatch` source end to end: the real CLI in a child process, the real AWS SDK client, and a
 * CloudWatch Logs server on node:http speaking the awsJson1.1 wire protocol (test/helpers). Pagination
 * with empty pages, several groups and streams, late events, throttling storms under a rate bound,
 * and SIGKILL in the middle of a backfill.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, idCounts, readSink, ROOT, runCli, spawnCli, type CliOptions } from '../helpers/cli.js';
import { CloudWatchLogsServer, type Fault, type StoredEvent } from '../helpers/cloudwatch-server.js';
import { cloudTrailEvent, prng } from '../helpers/data.js';
import { tempDir } from '../helpers/tmp.js';

const M = 60_000;
const H = 60 * M;
const SEED = Number(process.env.PIPE_CHAOS_SEED ?? 20240301);

/** Dummy credentials: the SDK signs every request with them; nothing reaches AWS. */
const AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'AKIDPIPETEST', AWS_SECRET_ACCESS_KEY: 'pipe-test-secret', AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
};

const servers: CloudWatchLogsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function server(): Promise<CloudWatchLogsServer> {
  const s = await new CloudWatchLogsServer().start();
  servers.push(s);
  return s;
}

function pipeline(dir: string, s: CloudWatchLogsServer, source: string, sink = ''): string {
  const file = join(dir, 'cw.yml');
  writeFileSync(file, `name: cw
state: ${join(dir, 'state.db')}
source: { type: cloudwatch, endpoint: ${s.url}, ${source} }
sink: { type: jsonl, dir: ${join(dir, 'out')}, flushInterval: 20ms${sink} }
`);
  return file;
}

function run(args: string[], opts: CliOptions = {}) {
  return runCli([...args, '--no-progress'], { ...opts, env: { ...AWS_ENV, ...opts.env } });
}

/** Puts `n` events per stream, spread evenly over [from, to). */
function spread(s: CloudWatchLogsServer, group: string, streams: string[], n: number, from: number, to: number): StoredEvent[] {
  const out: StoredEvent[] = [];
  for (const [k, stream] of streams.entries()) {
    out.push(...s.putEvents(group, stream, Array.from({ length: n }, (_, i) => ({
      timestamp: Math.floor(from + ((i + k / streams.length) * (to - from)) / n), message: `${group} ${stream} #${i}`,
    }))));
  }
  return out;
}

function assertExactlyOnce(rows: Array<Record<string, unknown>>, events: StoredEvent[]): void {
  const counts = idCounts(rows);
  const ids = new Set(events.map((e) => e.eventId));
  const missing = [...ids].filter((id) => !counts.has(id));
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  const unexpected = [...counts.keys()].filter((id) => !ids.has(id));
  expect({ missing, duplicated, unexpected }).toEqual({ missing: [], duplicated: [], unexpected: [] });
}

interface StoredPosition { pointer?: number; covered: Array<[number, number]>; partial?: [number, number] }

function positions(dir: string): Map<string, StoredPosition> {
  if (!existsSync(join(dir, 'state.db'))) return new Map();
  const db = new Database(join(dir, 'state.db'), { readonly: true });
  try {
    const rows = db.prepare("SELECT stream, value FROM positions WHERE pipeline = 'cw'").all() as Array<{ stream: string; value: string }>;
    return new Map(rows.map((r) => [r.stream, JSON.parse(r.value) as StoredPosition]));
  } finally {
    db.close();
  }
}

async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('cloudwatch source', () => {
  it('pages through empty pages and tokens, across groups by name, ARN and prefix, and their streams', async () => {
    const s = await server();
    s.pageSize = 3;
    s.groupPageSize = 2;
    const now = Date.now();
    const events = [
      ...spread(s, '/app/api', ['i-1', 'i-2', 'i-3'], 7, now - 20 * H, now - M),
      ...spread(s, '/app/web', ['w-1', 'w-2'], 5, now - 15 * H, now - 2 * H),
      ...spread(s, '/app/worker', ['k-1'], 4, now - 3 * H, now - 2 * H),
      ...spread(s, '/ct/trail', ['t-1'], 6, now - 10 * H, now - 30 * M),
    ];
    // Two events in one millisecond, in two streams: both are collected (no "last timestamp + 1 ms").
    events.push(...s.putEvents('/app/api', 'i-1', [{ timestamp: now - 5 * H, message: 'same ms A' }]));
    events.push(...s.putEvents('/app/api', 'i-2', [{ timestamp: now - 5 * H, message: 'same ms B' }]));
    spread(s, '/other/x', ['o-1'], 3, now - 2 * H, now - H);
    const dir = tempDir();
    const arn = 'arn:aws:logs:us-east-1:123456789012:log-group:/ct/trail';
    const file = pipeline(dir, s, `logGroup: ["${arn}"], logGroupPrefix: /app/, startTime: 1d, window: 4h, maxRequestsPerSecond: 500`);

    const dry = await run(['run', file, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr.match(/would collect \S+.*/g)).toEqual([
      '/ct/trail/t-1', '/app/api/i-1', '/app/api/i-2', '/app/api/i-3', '/app/web/w-1', '/app/web/w-2', '/app/worker/k-1',
    ].map((u) => `would collect cloudwatch://${u}`));
    expect(readSink(join(dir, 'out'))).toEqual([]);

    const first = await run(['run', file]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(new RegExp(` ${events.length} rows`));
    const rows = readSink(join(dir, 'out'));
    assertExactlyOnce(rows, events);
    const one = events.find((e) => e.message === 'same ms B')!;
    expect(rows.find((r) => r._id === one.eventId)).toEqual({
      message: 'same ms B', logGroupName: '/app/api', logStreamName: 'i-2', timestamp: one.timestamp, ingestionTime: one.ingestionTime,
      eventId: one.eventId, _id: one.eventId, _time: new Date(one.timestamp).toISOString(), _source: 'cloudwatch:///app/api/i-2',
    });
    expect(rows.filter((r) => r.logGroupName === '/ct/trail')).toHaveLength(6);
    // Within a group, rows come in time order.
    for (const g of ['/app/api', '/app/web', '/ct/trail']) {
      const times = rows.filter((r) => r.logGroupName === g).map((r) => r.timestamp as number);
      expect(times).toEqual([...times].sort((a, b) => a - b));
    }

    const filters = s.filterRequests();
    expect(s.requests.every((r) => r.signed)).toBe(true);
    // Empty pages with a token were followed, and the pages after them had events.
    const emptyWithToken = filters.filter((r, i) => r.events === 0 && r.nextToken && (filters[i + 1]?.events ?? 0) > 0);
    expect(emptyWithToken.length).toBeGreaterThan(10);
    // Every query ran until a page came without a token: one such page per window.
    const windows = filters.filter((r) => r.input.nextToken === undefined);
    expect(filters.filter((r) => r.status === 200 && !r.nextToken)).toHaveLength(windows.length);
    expect(windows.length).toBe(4 * 6);
    expect(filters.filter((r) => r.input.logGroupIdentifier === arn).length).toBeGreaterThan(0);
    expect(s.requests.filter((r) => r.operation === 'DescribeLogGroups' && r.input.logGroupNamePrefix === '/app/').length).toBeGreaterThanOrEqual(2 + 2);

    // The order is a function of the data: a fresh state collects the same rows in the same order.
    const again = tempDir();
    const r2 = await run(['run', pipeline(again, s, `logGroup: ["${arn}"], logGroupPrefix: /app/, startTime: 1d, window: 4h, maxRequestsPerSecond: 500`)]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(readSink(join(again, 'out')).map((r) => r._id)).toEqual(rows.map((r) => r._id));

    // A rerun finds nothing new, though it queries the lookback again.
    const rerun = await run(['run', file]);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toMatch(/ 0 rows/);
    assertExactlyOnce(readSink(join(dir, 'out')), events);
  });

  it('selects streams by name or prefix and applies the filter pattern on the service', async () => {
    const s = await server();
    const now = Date.now();
    s.putEvents('/svc', 'api-1', [{ timestamp: now - 3 * M, message: 'ERROR db down' }, { timestamp: now - 2 * M, message: 'INFO ok' }]);
    s.putEvents('/svc', 'api-2', [{ timestamp: now - 3 * M, message: 'ERROR disk' }]);
    s.putEvents('/svc', 'batch-1', [{ timestamp: now - M, message: 'ERROR batch' }]);
    const a = tempDir();
    const byPrefix = await run(['run', pipeline(a, s, 'logGroup: /svc, streamPrefix: api-, filterPattern: ERROR, maxRequestsPerSecond: 100')]);
    expect(byPrefix.code, byPrefix.stderr).toBe(0);
    expect(readSink(join(a, 'out')).map((r) => r.message).sort()).toEqual(['ERROR db down', 'ERROR disk']);
    expect(s.filterRequests().every((r) => r.input.filterPattern === 'ERROR' && r.input.logStreamNamePrefix === 'api-')).toBe(true);
    const b = tempDir();
    const byName = await run(['run', pipeline(b, s, 'logGroup: /svc, streams: [api-1, batch-1], maxRequestsPerSecond: 100')]);
    expect(byName.code, byName.stderr).toBe(0);
    expect(readSink(join(b, 'out')).map((r) => r.message).sort()).toEqual(['ERROR batch', 'ERROR db down', 'INFO ok']);
  });

  it('collects late events stamped before the pointer (inside the lookback) exactly once on the next run', async () => {
    const s = await server();
    const now = Date.now();
    // Some events inside the last 5 minutes: the next run queries them again and must skip them.
    const events = spread(s, '/late', ['a', 'b'], 20, now - 50 * M, now - 10_000);
    const dir = tempDir();
    const file = pipeline(dir, s, 'logGroup: /late, startTime: 1h, lookback: 5m, maxRequestsPerSecond: 200');
    const first = await run(['run', file, '--once']);
    expect(first.code, first.stderr).toBe(0);
    assertExactlyOnce(readSink(join(dir, 'out')), events);
    const pointer = positions(dir).get('cloudwatch:/late')!.pointer!;
    expect(pointer).toBeGreaterThanOrEqual(now);

    // Late: stamped before the pointer, arriving now. On time: stamped after it.
    const late = [
      ...s.putEvents('/late', 'a', [{ timestamp: pointer - 2 * M, message: 'late 2m' }, { timestamp: pointer - 1, message: 'late 1ms' }]),
      ...s.putEvents('/late', 'c', [{ timestamp: pointer - 5 * M + 1000, message: 'late 4m59s, new stream' }]),
    ];
    const onTime = s.putEvents('/late', 'b', [{ timestamp: pointer, message: 'at the pointer' }, { timestamp: pointer + 5, message: 'after' }]);
    // Later than the lookback: out of reach by design (documented), whatever the next run does.
    const tooLate = s.putEvents('/late', 'a', [{ timestamp: pointer - 20 * M, message: 'late 20m' }]);
    const before = s.filterRequests().length;
    const second = await run(['run', file, '--once']);
    expect(second.code, second.stderr).toBe(0);
    const rows = readSink(join(dir, 'out'));
    assertExactlyOnce(rows, [...events, ...late, ...onTime]);
    expect(rows.some((r) => r._id === tooLate[0]!.eventId)).toBe(false);
    const query = s.filterRequests()[before]!;
    expect(query.input.startTime).toBe(pointer - 5 * M);
    // The re-query returned the old events of the lookback again; none was written twice.
    const old = events.filter((e) => e.timestamp >= pointer - 5 * M).length;
    expect(old).toBeGreaterThanOrEqual(3);
    expect(s.filterRequests().slice(before).reduce((n, r) => n + (r.events ?? 0), 0)).toBe(old + late.length + onTime.length);

    const third = await run(['run', file, '--once']);
    expect(third.code, third.stderr).toBe(0);
    expect(readSink(join(dir, 'out'))).toHaveLength(rows.length);
  });

  it('a polling run picks up late and new events as they arrive, exactly once, until SIGTERM', async () => {
    const s = await server();
    const now = Date.now();
    const events = spread(s, '/poll', ['a', 'b'], 10, now - 20 * M, now - 1000);
    const dir = tempDir();
    const file = pipeline(dir, s, 'logGroup: /poll, startTime: 1h, lookback: 10m, poll: 150ms, maxRequestsPerSecond: 200');
    const child = spawnCli(['run', file, '--no-progress'], { env: AWS_ENV });
    const done = collect(child);
    const out = join(dir, 'out');
    await until('the first events', () => readSink(out).length === events.length);
    for (let round = 0; round < 3; round++) {
      const t = Date.now();
      events.push(...s.putEvents('/poll', 'a', [{ timestamp: t - 3 * M - round, message: `late ${round}` }]));
      events.push(...s.putEvents('/poll', `new-${round}`, [{ timestamp: t, message: `new ${round}` }]));
      await until(`round ${round}`, () => readSink(out).length === events.length);
    }
    const polls = s.filterRequests().length;
    await new Promise((r) => setTimeout(r, 400));
    expect(s.filterRequests().length).toBeGreaterThan(polls);
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code, r.stderr).toBe(130);
    assertExactlyOnce(readSink(out), events);
  });

  it('rides out a throttling storm (and 5xx and resets): every row once, the call rate under its bound', async () => {
    const s = await server();
    s.pageSize = 8;
    const random = prng(SEED);
    const faults: Fault[] = ['throttle', 'throttle', 'throttle', 'unavailable', 'internal', 'reset'];
    // A storm: five throttles in a row, then 40% of all requests faulted, at most two in a row (the
    // backoff doubles with each: longer runs only make the test slower).
    let inRow = 0;
    s.fault = ({ n }) => {
      const f = n >= 4 && n < 9 ? 'throttle' : inRow < 2 && random() < 0.4 ? faults[Math.floor(random() * faults.length)] : undefined;
      inRow = f ? inRow + 1 : 0;
      return f;
    };
    const now = Date.now();
    const events = [...spread(s, '/storm/a', ['x', 'y'], 20, now - 50 * M, now - M), ...spread(s, '/storm/b', ['z'], 40, now - 50 * M, now - M)];
    const dir = tempDir();
    const rate = 12;
    const r = await run(['run', pipeline(dir, s, `logGroupPrefix: /storm/, startTime: 1h, maxRequestsPerSecond: ${rate}`)]);
    expect(r.code, r.stderr).toBe(0);
    assertExactlyOnce(readSink(join(dir, 'out')), events);
    const at = s.requests.map((q) => q.at).sort((a, b) => a - b);
    const faulted = s.requests.filter((q) => q.status !== 200).length;
    expect(faulted).toBeGreaterThanOrEqual(10);
    expect(s.requests.filter((q) => q.error === 'ThrottlingException').length).toBeGreaterThanOrEqual(6);
    expect(s.requests.filter((q) => q.status === -1 || q.status >= 500).length).toBeGreaterThan(0);
    // Retries are calls too: the whole run stays under the bound, on average and in every second
    // (+1 for arrival jitter in this process).
    expect(((at.length - 1) * 1000) / (at.at(-1)! - at[0]!)).toBeLessThanOrEqual(rate);
    let busiest = 0;
    for (let i = 0, j = 0; i < at.length; i++) {
      while (at[j]! < at[i]! - 1000) j++;
      busiest = Math.max(busiest, i - j + 1);
    }
    expect(busiest).toBeLessThanOrEqual(rate + 1);
  });

  it('kill -9 in the middle of a backfill, then a rerun: every event exactly once, resumed at its window', async () => {
    const s = await server();
    s.pageSize = 4;
    const now = Date.now();
    const events = [
      ...spread(s, '/bf/a', ['1', '2'], 250, now - 48 * H, now - H),
      ...spread(s, '/bf/b', ['1', '2'], 250, now - 47 * H, now - 2 * H),
      // Enough events that the random kills below still land mid-run after the failpoint runs.
      ...spread(s, '/bf/c', ['1'], 1500, now - 40 * H, now - 3 * H),
    ];
    const dir = tempDir();
    const file = pipeline(dir, s, 'logGroupPrefix: /bf/, startTime: 50h, window: 1h, lookback: 5m, maxRequestsPerSecond: 2000', ', maxRows: 40');
    const out = join(dir, 'out');
    const random = prng(SEED + 7);
    let killed = 0;
    let resumed = 0;
    const partial: number[] = [];
    /** One run, killed at a failpoint or once `rows` more rows are committed. */
    const kill = async (env: Record<string, string>, rows?: number): Promise<void> => {
      const before = positions(dir);
      const from = s.requests.length;
      const had = readSink(out).length;
      const child = spawnCli(['run', file, '--no-progress'], { env: { ...AWS_ENV, ...env } });
      const done = collect(child);
      let exited = false;
      void done.then(() => (exited = true));
      if (rows !== undefined) {
        await until('progress', () => exited || readSink(out).length >= had + rows, 30_000);
        await new Promise((r) => setTimeout(r, Math.floor(random() * 30)));
        child.kill('SIGKILL');
      }
      const r = await done;
      if (r.signal === 'SIGKILL') killed++;
      else expect(r.code, r.stderr).toBe(0);
      const visible = readSink(out);
      expect(idCounts(visible).size).toBe(visible.length);
      partial.push(visible.length);
      // Each group's first query of this run starts at its committed window, not at startTime.
      for (const [stream, pos] of before) {
        const group = stream.slice('cloudwatch:'.length);
        const q = s.requests.slice(from).find((x) => x.operation === 'FilterLogEvents' && x.input.logGroupName === group);
        if (!q || pos.pointer === undefined) continue;
        const start = pos.covered.length ? Math.max(pos.covered[0]![0], pos.pointer - 5 * M) : pos.pointer;
        expect(q.input.startTime).toBe(start);
        if (start > now - 49 * H) resumed++;
      }
    };
    for (const point of ['sink:before-commit@10', 'sink:after-commit@20', 'sink:after-rename@30']) await kill({ PIPE_FAILPOINT: point });
    for (let round = 0; round < 4; round++) await kill({}, 40 + Math.floor(random() * 160));
    expect(killed).toBeGreaterThanOrEqual(6);
    expect(resumed).toBeGreaterThanOrEqual(6);
    // The kills landed in the middle: some rows were committed, not all.
    expect(partial.filter((n) => n > 0 && n < events.length).length).toBeGreaterThanOrEqual(4);
    const final = await run(['run', file]);
    expect(final.code, final.stderr).toBe(0);
    assertExactlyOnce(readSink(out), events);
  });

  it('cloudtrail: CloudTrail delivered to CloudWatch Logs comes out unchanged, with the example pipeline', async () => {
    const s = await server();
    // The example's defaults (5 calls/s, 6h windows over a day): keep the number of calls small.
    s.emptyPages = false;
    s.pageSize = 100;
    const now = Date.now();
    const group = 'aws-cloudtrail-logs-123456789012-1a2b3c4d';
    const stream = '123456789012_CloudTrail_us-east-1';
    const trail = Array.from({ length: 12 }, (_, i) => cloudTrailEvent(7, i));
    s.putEvents(group, stream, trail.map((e, i) => ({ timestamp: now - 30 * M + i * 1000, message: JSON.stringify(e) })));
    s.putEvents(group, `${stream}_2`, trail.slice(0, 3).map((e, i) => ({ timestamp: now - 20 * M + i, message: JSON.stringify({ ...e, eventID: `${String(e.eventID)}-b` }) })));
    const dir = tempDir();
    const example = join(ROOT, 'pipelines/cloudtrail-cloudwatch.yml');
    const env = { CLOUDTRAIL_LOG_GROUP: group, AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: s.url };
    const v = await runCli(['validate', example], { env: { ...AWS_ENV, ...env } });
    expect(v.code, v.stderr).toBe(0);
    const missing = await runCli(['validate', example], { env: { ...AWS_ENV, CLOUDTRAIL_LOG_GROUP: undefined } });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('CLOUDTRAIL_LOG_GROUP');
    const r = await run(['run', example, '--once'], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    const rows = readSink(join(dir, 'out/cloudtrail-cloudwatch'));
    expect(rows).toHaveLength(15);
    const byId = new Map(rows.map((row) => [row._id, row]));
    for (const e of trail) {
      expect(byId.get(e.eventID)).toEqual({ ...e, _id: e.eventID, _time: new Date(e.eventTime as string).toISOString(), _source: `cloudwatch://${group}/${stream}` });
    }
    expect(byId.get(`${String(trail[0]!.eventID)}-b`)?._source).toBe(`cloudwatch://${group}/${stream}_2`);
    // With parseJson the mapper gets the message parsed: the same rows.
    const parsed = tempDir();
    const file = join(parsed, 'ct.yml');
    writeFileSync(file, readFileSync(example, 'utf8').replace('type: cloudwatch', 'type: cloudwatch\n  parseJson: true'));
    const p = await run(['run', file, '--once'], { cwd: parsed, env });
    expect(p.code, p.stderr).toBe(0);
    expect(readSink(join(parsed, 'out/cloudtrail-cloudwatch')).sort(byIdOrder)).toEqual(rows.sort(byIdOrder));
  });
});

function byIdOrder(a: Record<string, unknown>, b: Record<string, unknown>): number {
  return String(a._id).localeCompare(String(b._id));
}
