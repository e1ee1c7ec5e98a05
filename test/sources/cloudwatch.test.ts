/**
 * The `cloudwatch` source in-process, with the real SDK client against the CloudWatch Logs server of
 * test/helpers: backfills of time ranges beside runs, configuration checks, missing groups, faults
 * outlasting their retries in a poller, and more than 100 stream names.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPipeline, validatePipelineText } from '../../src/config/load.js';
import { makeResolver } from '../../src/config/resolve.js';
import { buildPipeline } from '../../src/engine/build.js';
import { PipelineRun } from '../../src/engine/run.js';
import { builtins } from '../../src/registry.js';
import { groupRef } from '../../src/sources/cloudwatch-api.js';
import { eventRecord, parseMessage } from '../../src/sources/cloudwatch-group.js';
import { SqliteStore } from '../../src/state/sqlite.js';
import type { RunSummary } from '../../src/state/store.js';
import type { Logger, SourceScope } from '../../src/types.js';
import { idCounts, readSink } from '../helpers/cli.js';
import { CloudWatchLogsServer, type StoredEvent } from '../helpers/cloudwatch-server.js';
import { tempDir } from '../helpers/tmp.js';

const M = 60_000;
const H = 60 * M;
const resolve = makeResolver(builtins);
let s: CloudWatchLogsServer;

beforeAll(async () => {
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: 'AKIDPIPETEST', AWS_SECRET_ACCESS_KEY: 'pipe-test-secret', AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
  });
  s = await new CloudWatchLogsServer().start();
});
afterAll(() => s.close());

interface RunOptions {
  scope?: SourceScope;
  once?: boolean;
  stopAfterRows?: number;
  stopWhen?: () => boolean;
  stop?: AbortController;
}

/** Runs a pipeline in this process; returns the summary and the warnings logged. */
async function runPipeline(dir: string, source: string, opts: RunOptions = {}): Promise<{ summary: RunSummary & { error?: Error }; warnings: string[] }> {
  const file = join(dir, 'cw.yml');
  writeFileSync(file, `name: cw\nsource: { type: cloudwatch, endpoint: ${s.url}, region: us-east-1, ${source} }\nsink: { type: jsonl, dir: ${join(dir, 'out')}, maxRows: 10, flushInterval: 10ms }\n`);
  const cfg = await loadPipeline(file, { env: {}, resolve });
  const warnings: string[] = [];
  const log: Logger = { debug() {}, info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
  const store = new SqliteStore(join(dir, 'state.db'), 'h');
  const ctx = { pipeline: 'cw', store, log, baseDir: dir };
  const built = await buildPipeline(cfg, ctx, (t) => builtins.loader[t]);
  const stop = opts.stop ?? new AbortController();
  const run = new PipelineRun({
    pipeline: 'cw', command: opts.scope ? 'backfill' : 'run', store, host: 'h', runId: `r${Date.now()}`, once: opts.once ?? true,
    retryFailed: false, dryRun: false, scope: opts.scope ?? {}, stop: stop.signal, log,
  }, built, ctx);
  const t = setInterval(() => {
    if ((opts.stopAfterRows !== undefined && run.stats.rows >= opts.stopAfterRows) || opts.stopWhen?.()) stop.abort();
  }, 1);
  try {
    return { summary: await run.run(), warnings };
  } finally {
    clearInterval(t);
    await store.close();
  }
}

function exactlyOnce(rows: Array<Record<string, unknown>>, events: StoredEvent[]): void {
  const counts = idCounts(rows);
  expect([...counts.values()].every((n) => n === 1)).toBe(true);
  expect([...counts.keys()].sort()).toEqual(events.map((e) => e.eventId).sort());
}

async function position(dir: string): Promise<{ partial?: Array<[number, number]>; pointer?: number }> {
  const store = new SqliteStore(join(dir, 'state.db'), 'h');
  try {
    return (await store.position('cw', 'cloudwatch:/bf')) as { partial?: Array<[number, number]> };
  } finally {
    await store.close();
  }
}

function put(group: string, stream: string, n: number, from: number, to: number): StoredEvent[] {
  return s.putEvents(group, stream, Array.from({ length: n }, (_, i) => ({ timestamp: Math.floor(from + (i * (to - from)) / n), message: `${group} #${i}` })));
}

describe('cloudwatch records', () => {
  it.each([
    ['{"a":1}', { a: 1 }],
    ['  [1, "x"]', [1, 'x']],
    ['{not json', '{not json'],
    ['42', '42'],
    ['"text"', '"text"'],
    ['plain text', 'plain text'],
  ])('parseJson hands %j over as %j', (text, value) => {
    expect(parseMessage(text)).toEqual(value);
  });

  it('a record is the event as FilterLogEvents returns it, with its group and the three row fields', () => {
    const e = { eventId: '3760', timestamp: Date.UTC(2024, 2, 1, 12, 0, 0, 7), message: '{"x":1}', logStreamName: 'eni-1', ingestionTime: 1709294400500 };
    expect(eventRecord(e, groupRef('arn:aws:logs:us-east-1:123456789012:log-group:/vpc/flows:*'), false)).toEqual({
      message: '{"x":1}', logGroupName: '/vpc/flows', logStreamName: 'eni-1', timestamp: e.timestamp, ingestionTime: 1709294400500,
      eventId: '3760', _id: '3760', _time: '2024-03-01T12:00:00.007Z', _source: 'cloudwatch:///vpc/flows/eni-1',
    });
    expect(eventRecord(e, groupRef('/vpc/flows'), true).message).toEqual({ x: 1 });
  });
});

describe('cloudwatch backfill', () => {
  it('collects the history a run never covered, interrupted or not, and never what the run collected', async () => {
    const now = Date.now();
    const events = put('/bf', 'a', 120, now - 10 * H, now - M);
    const dir = tempDir();
    const source = 'logGroup: /bf, startTime: 3h, window: 20m, lookback: 5m, maxRequestsPerSecond: 1000';
    const inRun = events.filter((e) => e.timestamp >= now - 3 * H - 2000);
    expect((await runPipeline(dir, source)).summary.exitCode).toBe(0);
    exactlyOnce(readSink(join(dir, 'out')), inRun.filter((e) => e.timestamp >= now - 3 * H));

    // A backfill of the 6 hours before: stopped inside its first window, after a page of events
    // (requests: empty page + token, 3 events + token, empty page + token: stopped here).
    const scope = { from: new Date(now - 9 * H), to: new Date(now - 2 * H) };
    const wanted = events.filter((e) => e.timestamp >= now - 9 * H);
    const stop = new AbortController();
    let continued = 0;
    s.fault = ({ input }) => {
      if (input.nextToken !== undefined && ++continued === 2) stop.abort();
      return undefined;
    };
    const stopped = await runPipeline(dir, source, { scope, stop }).finally(() => (s.fault = undefined));
    expect(stopped.summary.exitCode).toBe(130);
    const mid = readSink(join(dir, 'out'));
    expect(mid.length).toBeGreaterThan(inRun.length);
    expect(mid.length).toBeLessThan(wanted.length);
    const partial = (await position(dir)).partial!;
    expect(partial).toHaveLength(1);
    expect(partial[0]![0]).toBeLessThan(now - 3 * H);
    // A run in between forgets the ids the run no longer needs, and keeps those of the partial window.
    expect((await runPipeline(dir, source)).summary.exitCode).toBe(0);
    expect((await position(dir)).partial).toEqual(partial);
    const resumed = await runPipeline(dir, source, { scope });
    expect(resumed.summary.exitCode).toBe(0);
    exactlyOnce(readSink(join(dir, 'out')), wanted);
    expect((await position(dir)).partial).toBeUndefined();
    // Again: nothing is left to collect.
    expect((await runPipeline(dir, source, { scope })).summary.rows).toBe(0);
  });
});

describe('cloudwatch configuration', () => {
  it.each([
    ['no group', 'startTime: 1h', 'source.logGroup', 2, 'required: a log group name or ARN (or a list), or logGroupPrefix'],
    ['streams and a prefix', 'logGroup: /g\n  streams: [a]\n  streamPrefix: b', 'source.streamPrefix', 6, 'give streams or streamPrefix, not both (FilterLogEvents takes one)'],
    ['bad startTime', 'logGroup: /g\n  startTime: yesterday', 'source.startTime', 5, "expected ISO 8601 or a duration before now such as 7d, got 'yesterday'"],
    ['lookback over 14 days', 'logGroup: /g\n  lookback: 15d', 'source.lookback', 5, ''],
    ['unknown option', 'logGroup: /g\n  logGroups: [/h]', 'source.logGroups', 5, '(did you mean logGroup?)'],
    ['empty prefix', 'logGroupPrefix: ""', 'source.logGroupPrefix', 4, 'a prefix cannot be empty (it would match every log group)'],
  ])('%s', async (_name, options, path, line, message) => {
    const text = `name: cw\nsource:\n  type: cloudwatch\n  ${options}\nsink: { type: stdout }\n`;
    const v = await validatePipelineText(text, '/x/cw.yml', { env: {}, resolve });
    expect(v.problems.map((p) => p.path)).toEqual([path]);
    expect(v.problems[0]!.line).toBe(line);
    expect(v.problems[0]!.message).toContain(message);
  });

  it('a valid source validates, with its defaults', async () => {
    const v = await validatePipelineText('name: cw\nsource: { type: cloudwatch, logGroup: [/a, /b] }\nsink: { type: stdout }\n', '/x/cw.yml', { env: {}, resolve });
    expect(v.problems).toEqual([]);
    expect(v.config!.source.options).toEqual({
      logGroup: ['/a', '/b'], startTime: '1d', lookback: 300_000, maxRequestsPerSecond: 5, window: 21_600_000, parseJson: false, maxAttempts: 10,
    });
  });
});

describe('cloudwatch faults and edges', () => {
  it('--prefix does not apply: a usage error', async () => {
    const { summary } = await runPipeline(tempDir(), 'logGroup: /x', { scope: { prefix: 'a/' } });
    expect(summary.exitCode).toBe(1);
    expect(summary.error?.message).toMatch(/--prefix does not apply/);
  });

  it('a missing group is a warning; the others are collected', async () => {
    const now = Date.now();
    const events = put('/present', 'p', 5, now - 30 * M, now - M);
    const dir = tempDir();
    const { summary, warnings } = await runPipeline(dir, 'logGroup: [/absent, /present], startTime: 1h, maxRequestsPerSecond: 1000');
    expect(summary.exitCode).toBe(0);
    expect(warnings).toEqual(['cloudwatch FilterLogEvents /absent: ResourceNotFoundException (HTTP 400): The specified log group does not exist. (no such log group); skipped until it exists']);
    exactlyOnce(readSink(join(dir, 'out')), events);
  });

  it('a poller gives a group whose calls keep failing another try next poll, and misses nothing', async () => {
    const now = Date.now();
    const events = [...put('/flaky', 'f', 8, now - 30 * M, now - M), ...put('/steady', 's', 8, now - 30 * M, now - M)];
    let flakyCalls = 0;
    s.fault = ({ operation, input }) => (operation === 'FilterLogEvents' && input.logGroupName === '/flaky' && ++flakyCalls <= 3 ? 'unavailable' : undefined);
    const dir = tempDir();
    try {
      const { summary, warnings } = await runPipeline(dir, 'logGroup: [/flaky, /steady], startTime: 1h, poll: 100ms, maxAttempts: 2, maxRequestsPerSecond: 1000', {
        once: false, stopWhen: () => readSink(join(dir, 'out')).length >= events.length,
      });
      expect(summary.exitCode).toBe(130);
      expect(warnings.filter((w) => w.includes('/flaky') && w.includes('after 2 attempts; log group /flaky is tried again next poll'))).toHaveLength(1);
      exactlyOnce(readSink(join(dir, 'out')), events);
    } finally {
      s.fault = undefined;
    }
  });

  it('a single pass fails on a fault that outlasts its retries, after committing what it read', async () => {
    const now = Date.now();
    put('/down', 'd', 3, now - 30 * M, now - M);
    s.fault = ({ input }) => (input.logGroupName === '/down' ? 'throttle' : undefined);
    try {
      const { summary } = await runPipeline(tempDir(), 'logGroup: /down, startTime: 1h, maxAttempts: 3, maxRequestsPerSecond: 1000');
      expect(summary.exitCode).toBe(1);
      expect(summary.error?.message).toBe('cloudwatch FilterLogEvents /down: ThrottlingException (HTTP 400): Rate exceeded, after 3 attempts');
    } finally {
      s.fault = undefined;
    }
  });

  it('more than 100 stream names are queried 100 at a time', async () => {
    const now = Date.now();
    const names = Array.from({ length: 150 }, (_, i) => `s-${String(i).padStart(3, '0')}`);
    const events = names.flatMap((n, i) => s.putEvents('/many', n, [{ timestamp: now - 10 * M + i, message: n }]));
    s.putEvents('/many', 'not-listed', [{ timestamp: now - 5 * M, message: 'no' }]);
    const from = s.requests.length;
    const dir = tempDir();
    const { summary } = await runPipeline(dir, `logGroup: /many, streams: [${names.join(', ')}], startTime: 1h, maxRequestsPerSecond: 1000`);
    expect(summary.exitCode).toBe(0);
    exactlyOnce(readSink(join(dir, 'out')), events);
    const sizes = new Set(s.requests.slice(from).map((r) => (r.input.logStreamNames as string[] | undefined)?.length));
    expect([...sizes].sort()).toEqual([100, 50]);
  });
});
