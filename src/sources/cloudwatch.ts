/**
 * The `cloudwatch` source: events of CloudWatch Logs groups through FilterLogEvents, exactly once.
 *
 * Each log group keeps a time pointer, committed with the rows. Every pass queries from the pointer
 * minus `lookback` up to the time the pass started, so events that arrive late (CloudWatch accepts
 * events stamped up to 14 days in the past) are still found while they are inside the lookback; the
 * event ids already collected in that range are remembered in the state with the rows, and skipped.
 * A first run, or a long pause, is caught up in windows, each committed as it completes. Groups are
 * read in turn, one window each, in the order they are configured (prefix matches by name), so
 * output order depends on the data only. All calls share one token bucket (`maxRequestsPerSecond`).
 * See cloudwatch-window.ts for the position and cloudwatch-group.ts for one group's reading.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseTime } from '../config/units.js';
import { PipeError } from '../errors.js';
import { cloudWatchUri } from '../mappers/common.js';
import { quietLogger } from '../ping.js';
import type { ComponentSpec } from '../spec.js';
import type { ComponentContext, ReadContext, StreamChunk, StreamSource } from '../types.js';
import { groupRef, isGroupNotFound, pacedLogsApi, sdkLogsApi, transientFault, type GroupRef, type LogsApi } from './cloudwatch-api.js';
import { GroupReader, groupStream, type GroupReadOptions } from './cloudwatch-group.js';
import { parsePosition, type PassSpec } from './cloudwatch-window.js';
import { TokenBucket } from './rate-limit.js';

const DAY = 86_400_000;

export const spec: ComponentSpec = {
  kind: 'source',
  type: 'cloudwatch',
  summary: 'CloudWatch Logs groups through FilterLogEvents: late events within the lookback collected once, windowed backfills, polling.',
  options: {
    logGroup: { type: 'string-or-strings', example: '/aws/cloudtrail/management', description: 'Log group name or ARN (cross-account), or a list of them.' },
    logGroupPrefix: { type: 'string-or-strings', example: '/aws/lambda/', description: 'Every log group whose name starts with this (DescribeLogGroups), or with one of a list; looked up again every poll.' },
    streams: { type: 'string-or-strings', example: ['app-1', 'app-2'], description: 'Only these log streams (names).' },
    streamPrefix: { type: 'string', example: '123456789012_CloudTrail_', description: 'Only log streams whose name starts with this (not with `streams`).' },
    filterPattern: { type: 'string', example: '{ $.eventSource = "s3.amazonaws.com" }', description: 'A CloudWatch Logs filter pattern; only matching events are collected.' },
    startTime: { type: 'string', default: '1d', example: '2024-03-01T00:00:00Z', description: 'Where the first run of a group starts: ISO 8601, or a duration before now (7d). Later runs continue from the pointer.' },
    lookback: { type: 'duration', default: '5m', min: 0, max: 14 * DAY, example: '15m', description: 'How far behind its pointer each pass looks again for late events (up to 14d); events seen before are skipped by eventId.' },
    poll: { type: 'duration', min: 100, example: '30s', description: 'Query again this often until stopped (SIGINT/SIGTERM); without it, one pass.' },
    region: { type: 'string', example: 'us-east-1', description: 'AWS region (default: the SDK chain, AWS_REGION or the profile).' },
    endpoint: { type: 'string', example: 'http://127.0.0.1:4566', description: 'A CloudWatch Logs-compatible endpoint (default: AWS_ENDPOINT_URL_CLOUDWATCH_LOGS, else AWS).' },
    maxRequestsPerSecond: { type: 'number', default: 5, min: 0.01, max: 10_000, example: 5, description: 'Bound on the API call rate of this source, retries included (FilterLogEvents allows 5 per second per account and region).' },
    window: { type: 'duration', default: '6h', min: 1000, max: 14 * DAY, example: '1h', description: 'Longest time range queried and committed as one unit when catching up; busy groups get shorter windows.' },
    parseJson: { type: 'boolean', default: false, example: true, description: 'Hand a message that is a JSON object or array to mappers parsed, instead of as text.' },
    maxAttempts: { type: 'integer', default: 10, min: 1, max: 100, example: 10, description: 'Attempts per API call on throttling, 5xx and network faults (full-jitter backoff) before the call fails.' },
  },
  check: (options) => checkOptions(options),
  ping: (options) => pingGroups(options as unknown as CloudWatchOptions),
};

export interface CloudWatchOptions {
  logGroup?: string | string[];
  logGroupPrefix?: string | string[];
  streams?: string | string[];
  streamPrefix?: string;
  filterPattern?: string;
  startTime: string;
  lookback: number;
  poll?: number;
  region?: string;
  endpoint?: string;
  maxRequestsPerSecond: number;
  window: number;
  parseJson: boolean;
  maxAttempts: number;
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Checks across options, for `pipe validate` and for `create`. */
export function checkOptions(o: Record<string, unknown>): Array<{ option: string; message: string }> {
  const problems: Array<{ option: string; message: string }> = [];
  const groups = list(o.logGroup as string | string[] | undefined);
  const prefixes = list(o.logGroupPrefix as string | string[] | undefined);
  if (groups.length === 0 && prefixes.length === 0) {
    problems.push({ option: 'logGroup', message: 'required: a log group name or ARN (or a list), or logGroupPrefix' });
  }
  if (groups.some((g) => g === '')) problems.push({ option: 'logGroup', message: 'a log group name cannot be empty' });
  if (prefixes.some((g) => g === '')) problems.push({ option: 'logGroupPrefix', message: 'a prefix cannot be empty (it would match every log group)' });
  if (o.streams !== undefined && o.streamPrefix !== undefined) {
    problems.push({ option: 'streamPrefix', message: 'give streams or streamPrefix, not both (FilterLogEvents takes one)' });
  }
  if (typeof o.startTime === 'string' && parseTime(o.startTime) === undefined) {
    problems.push({ option: 'startTime', message: `expected ISO 8601 or a duration before now such as 7d, got '${o.startTime}'` });
  }
  return problems;
}

export class CloudWatchSource implements StreamSource {
  readonly kind = 'streams';
  #opts: CloudWatchOptions;
  #read: GroupReadOptions;
  #component: ComponentContext;
  #api: LogsApi | undefined;
  #makeApi: () => Promise<LogsApi>;
  #readers = new Map<string, GroupReader>();
  /** Groups found missing (warned about once). */
  #missing = new Set<string>();

  constructor(opts: CloudWatchOptions, component: ComponentContext, api?: LogsApi) {
    this.#opts = opts;
    this.#read = {
      streams: opts.streams === undefined ? undefined : list(opts.streams),
      streamPrefix: opts.streamPrefix, filterPattern: opts.filterPattern,
      lookback: opts.lookback, window: opts.window, parseJson: opts.parseJson,
    };
    this.#component = component;
    const bucket = new TokenBucket(opts.maxRequestsPerSecond);
    const pacing = { bucket, maxAttempts: opts.maxAttempts, backoff: { base: 100, cap: 20_000 }, log: component.log };
    this.#makeApi = async () => pacedLogsApi(api ?? await sdkLogsApi({
      ...(opts.region ? { region: opts.region } : {}), ...(opts.endpoint ? { endpoint: opts.endpoint } : {}), timeout: 60_000,
    }, component.log), pacing);
  }

  async *read(ctx: ReadContext): AsyncGenerator<StreamChunk> {
    if (ctx.scope.prefix !== undefined) {
      throw new PipeError('PIPE_USAGE', 'cloudwatch source: --prefix does not apply (use the streamPrefix option); --from/--to select a time range');
    }
    this.#api ??= await this.#makeApi();
    const api = this.#api;
    const backfill = ctx.scope.from !== undefined || ctx.scope.to !== undefined;
    const singlePass = backfill || ctx.once || this.#opts.poll === undefined;
    let groups: GroupRef[] = [];
    for (;;) {
      const passStart = Date.now();
      const spec = this.#passSpec(ctx, passStart);
      try {
        groups = await this.#groups(api, ctx.signal);
      } catch (err) {
        if (ctx.signal.aborted) return;
        if (singlePass || !isTransient(err)) throw err;
        ctx.log.warn(`${(err as Error).message}; reading the log groups found before, listing again next poll`);
      }
      const active: GroupReader[] = [];
      for (const group of groups) {
        let r = this.#readers.get(group.id);
        if (!r) {
          r = new GroupReader(group, this.#read, this.#component);
          this.#readers.set(group.id, r);
        }
        await r.load(ctx);
        if (await r.startPass(spec, ctx)) active.push(r);
      }
      // Round robin, one window per group per turn: a long backfill of one group does not starve the others.
      while (active.length > 0 && !ctx.signal.aborted) {
        for (const r of [...active]) {
          let more: boolean;
          try {
            more = yield* r.readWindow(api, ctx);
            this.#missing.delete(r.group.id);
          } catch (err) {
            if (ctx.signal.aborted) return;
            more = false;
            if (isGroupNotFound(err)) {
              // Said once, not every poll; it is looked for again every pass.
              if (!this.#missing.has(r.group.id)) ctx.log.warn(`${(err as Error).message}; skipped until it exists`);
              this.#missing.add(r.group.id);
            } else if (!singlePass && isTransient(err)) {
              ctx.log.warn(`${(err as Error).message}; log group ${r.group.id} is tried again next poll`);
            } else {
              throw err;
            }
          }
          if (!more) active.splice(active.indexOf(r), 1);
          if (ctx.signal.aborted) return;
        }
      }
      if (ctx.signal.aborted || singlePass || this.#opts.poll === undefined) return;
      const wait = passStart + this.#opts.poll - Date.now();
      try {
        if (wait > 0) await sleep(wait, undefined, { signal: ctx.signal });
      } catch {
        return;
      }
    }
  }

  /** What a pass covers: `run` from each pointer to now; `backfill` the uncovered part of --from/--to. */
  #passSpec(ctx: ReadContext, now: number): PassSpec {
    const start = parseTime(this.#opts.startTime, new Date(now))!.getTime();
    const { from, to } = ctx.scope;
    if (from !== undefined || to !== undefined) return { kind: 'backfill', from: from?.getTime() ?? start, to: Math.min(to?.getTime() ?? now, now) };
    return { kind: 'run', start, end: now, lookback: this.#opts.lookback };
  }

  /** The configured groups, then those matching a prefix, each once. */
  async #groups(api: LogsApi, signal: AbortSignal): Promise<GroupRef[]> {
    const out = new Map<string, GroupRef>();
    for (const g of list(this.#opts.logGroup)) out.set(groupRef(g).id, groupRef(g));
    for (const prefix of list(this.#opts.logGroupPrefix)) {
      let nextToken: string | undefined;
      do {
        const page = await api.describeLogGroups({ prefix, ...(nextToken ? { nextToken } : {}) }, signal);
        for (const g of page.groups) if (!out.has(g.id)) out.set(g.id, g);
        nextToken = page.nextToken;
      } while (nextToken !== undefined && !signal.aborted);
    }
    return [...out.values()];
  }

  /** `--dry-run`: the log streams a run would read, with where each group stands. */
  async *dryRun(ctx: ReadContext): AsyncGenerator<{ uri: string; state: string }> {
    this.#api ??= await this.#makeApi();
    const api = this.#api;
    const only = this.#opts.streams === undefined ? undefined : new Set(list(this.#opts.streams));
    for (const group of await this.#groups(api, ctx.signal)) {
      const stream = groupStream(group);
      const pointer = parsePosition(await ctx.position(stream), stream)?.pointer;
      const state = pointer === undefined ? 'new' : `from ${new Date(pointer - this.#opts.lookback).toISOString()}`;
      let nextToken: string | undefined;
      do {
        const page = await api.describeLogStreams({ group, ...(this.#opts.streamPrefix ? { prefix: this.#opts.streamPrefix } : {}), ...(nextToken ? { nextToken } : {}) }, ctx.signal)
          .catch((err: unknown) => {
            if (!isGroupNotFound(err)) throw err;
            ctx.log.warn((err as Error).message);
            return { streams: [], nextToken: undefined };
          });
        for (const s of page.streams) if (!only || only.has(s.name)) yield { uri: cloudWatchUri(group.name, s.name), state };
        nextToken = page.nextToken;
      } while (nextToken !== undefined && !ctx.signal.aborted);
    }
  }
}

/** A fault that outlasted its retries (throttling, 5xx, network): a poller tries again next poll. */
function isTransient(err: unknown): boolean {
  return err instanceof PipeError && transientFault(err.cause) !== undefined;
}

/**
 * `pipe validate --ping`: every named group exists (DescribeLogGroups on its name, or
 * DescribeLogStreams for an ARN, which DescribeLogGroups cannot take) and every prefix matches a group.
 */
async function pingGroups(o: CloudWatchOptions): Promise<string> {
  const pacing = { bucket: new TokenBucket(o.maxRequestsPerSecond), maxAttempts: Math.min(o.maxAttempts, 3), backoff: { base: 100, cap: 2000 }, log: quietLogger };
  const api = pacedLogsApi(await sdkLogsApi({
    ...(o.region ? { region: o.region } : {}), ...(o.endpoint ? { endpoint: o.endpoint } : {}), timeout: 10_000,
  }, quietLogger), pacing);
  const signal = AbortSignal.timeout(60_000);
  const found: string[] = [];
  for (const group of list(o.logGroup).map(groupRef)) {
    if (group.arn) {
      await api.describeLogStreams({ group }, signal);
    } else {
      const page = await api.describeLogGroups({ prefix: group.id }, signal);
      if (!page.groups.some((g) => g.id === group.id)) throw new PipeError('PIPE_SOURCE_FAILED', `cloudwatch: log group ${group.id} does not exist (DescribeLogGroups found no group of that name)`);
    }
    found.push(group.id);
  }
  for (const prefix of list(o.logGroupPrefix)) {
    const page = await api.describeLogGroups({ prefix }, signal);
    if (!page.groups.length) throw new PipeError('PIPE_SOURCE_FAILED', `cloudwatch: no log group name starts with ${prefix} (DescribeLogGroups)`);
    found.push(`${prefix}* (${page.groups.length}${page.nextToken ? '+' : ''} groups)`);
  }
  return `ok: log groups ${found.join(', ')}`;
}

export function create(options: Record<string, unknown>, ctx: ComponentContext): CloudWatchSource {
  const problems = checkOptions(options);
  if (problems.length) throw new PipeError('PIPE_CONFIG_INVALID', problems.map((p) => `${p.option}: ${p.message}`).join('; '));
  return new CloudWatchSource(options as unknown as CloudWatchOptions, ctx);
}
