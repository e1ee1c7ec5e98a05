/**
 * The three CloudWatch Logs calls the `cloudwatch` source makes (FilterLogEvents, DescribeLogGroups,
 * DescribeLogStreams), behind a narrow interface so tests can point the source at a local server and
 * nothing else changes. The AWS SDK is imported on first use, so `pipe --help` stays fast.
 *
 * The SDK's own retries are off (one attempt per send): `pacedLogsApi` retries instead, drawing
 * every attempt from the source's token bucket, so the bound on the call rate holds through a
 * throttling storm. Throttling, 5xx and network faults are retried with full-jitter backoff; what is
 * left is a PipeError naming the call and the log group. Messages carry the service's error name and
 * message only, which never contain credentials.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PipeError, type ErrorCode } from '../errors.js';
import type { Logger } from '../types.js';
import { backoffDelay, type BackoffOptions, type TokenBucket } from './rate-limit.js';
import { sdkLogger } from './aws-logger.js';
import { logsSdk } from './aws-sdk.js';

/** A log group as configured: a name, or an ARN (cross-account), with the name it shows in rows. */
export interface GroupRef {
  /** What identifies it to the API and in the state: the name or the ARN (without a trailing `:*`). */
  id: string;
  name: string;
  arn: boolean;
}

export interface LogEvent {
  eventId: string;
  timestamp: number;
  message: string;
  logStreamName: string;
  ingestionTime?: number;
}

export interface FilterRequest {
  group: GroupRef;
  /** Inclusive, epoch ms. */
  startTime: number;
  /** Inclusive, epoch ms. */
  endTime: number;
  streams?: string[];
  streamPrefix?: string;
  filterPattern?: string;
  nextToken?: string;
  limit?: number;
}

export interface FilterPage {
  events: LogEvent[];
  /** Present while there may be more: an empty page with a token is not the end. */
  nextToken?: string;
}

export interface LogStreamInfo {
  name: string;
  lastEventTimestamp?: number;
}

export interface LogsApi {
  filterLogEvents(req: FilterRequest, signal: AbortSignal): Promise<FilterPage>;
  describeLogGroups(req: { prefix: string; nextToken?: string }, signal: AbortSignal): Promise<{ groups: GroupRef[]; nextToken?: string }>;
  describeLogStreams(req: { group: GroupRef; prefix?: string; nextToken?: string }, signal: AbortSignal): Promise<{ streams: LogStreamInfo[]; nextToken?: string }>;
}

interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

const THROTTLING = new Set(['ThrottlingException', 'Throttling', 'TooManyRequestsException', 'RequestLimitExceeded', 'RateExceeded']);
const SERVER = new Set(['ServiceUnavailableException', 'ServiceUnavailable', 'InternalFailure', 'InternalServerError', 'InternalServiceError']);
const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

/** Why a failed call is worth another attempt, or undefined when it is not. */
export function transientFault(err: unknown): 'throttled' | 'server' | 'network' | undefined {
  const e = (err ?? {}) as SdkError & { errno?: string };
  const status = e.$metadata?.httpStatusCode;
  if (THROTTLING.has(e.name ?? '') || status === 429) return 'throttled';
  if (SERVER.has(e.name ?? '') || (status !== undefined && status >= 500)) return 'server';
  if (NETWORK.has(e.code ?? '') || NETWORK.has(e.errno ?? '') || e.name === 'TimeoutError' || e.name === 'RequestTimeout'
    || /socket hang up|ECONNRESET|other side closed/i.test(e.message ?? '')) return 'network';
  return undefined;
}

/** A group that does not exist (yet): skipped for this pass, not fatal. */
export function isGroupNotFound(err: unknown): boolean {
  return err instanceof PipeError && (err.cause as SdkError | undefined)?.name === 'ResourceNotFoundException';
}

/** Text for an SDK error: `AccessDeniedException (HTTP 400): User ... is not authorized`. */
function describe(err: SdkError): string {
  const status = err.$metadata?.httpStatusCode;
  const name = err.name && err.name !== 'Error' ? err.name : err.code ?? 'error';
  const message = err.message && err.message !== err.name ? `: ${err.message}` : '';
  return `${name}${status ? ` (HTTP ${status})` : ''}${message}`;
}

const PERMISSION: Record<string, string> = {
  FilterLogEvents: 'logs:FilterLogEvents', DescribeLogGroups: 'logs:DescribeLogGroups', DescribeLogStreams: 'logs:DescribeLogStreams',
};

/** Maps what is left of a failed call to a PipeError naming the call and the log group. */
export function callError(err: unknown, call: string, where: string, attempts: number): PipeError {
  if (err instanceof PipeError) return err;
  const e = (err ?? {}) as SdkError;
  const fault = transientFault(err);
  const code: ErrorCode = fault === 'throttled' ? 'PIPE_SOURCE_THROTTLED' : 'PIPE_SOURCE_FAILED';
  let hint = '';
  if (e.name === 'AccessDeniedException' || e.$metadata?.httpStatusCode === 403) hint = ` (this needs ${PERMISSION[call] ?? 'logs:*'} on the log group)`;
  else if (e.name === 'ResourceNotFoundException') hint = ' (no such log group)';
  else if (e.name === 'CredentialsProviderError' || /Could not load credentials/i.test(e.message ?? '')) {
    return new PipeError('PIPE_SOURCE_FAILED', `cloudwatch ${call} ${where}: no AWS credentials found (environment, profile, SSO or instance role)`, { cause: err });
  }
  const tries = attempts > 1 ? `, after ${attempts} attempts` : '';
  return new PipeError(code, `cloudwatch ${call} ${where}: ${describe(e)}${hint}${tries}`, { cause: err });
}

export interface PacingOptions {
  bucket: TokenBucket;
  /** Attempts per call, the first included. */
  maxAttempts: number;
  backoff: BackoffOptions;
  log: Logger;
  random?: () => number;
}

/**
 * Runs `attempt` until it succeeds, fails for good, or `signal` aborts. Every attempt first takes a
 * token; a transient fault waits a full-jitter backoff before the next.
 */
export async function paced<T>(call: string, where: string, attempt: () => Promise<T>, signal: AbortSignal, opts: PacingOptions): Promise<T> {
  for (let n = 1; ; n++) {
    await opts.bucket.take(signal);
    try {
      return await attempt();
    } catch (err) {
      if (signal.aborted) throw signal.reason ?? err;
      const fault = transientFault(err);
      if (!fault || n >= opts.maxAttempts) throw callError(err, call, where, n);
      const wait = backoffDelay(n - 1, opts.backoff, opts.random);
      // Each retry at debug level; a call still failing after three attempts is a storm worth a line.
      const line = `cloudwatch ${call} ${where}: ${fault} (${describe(err as SdkError)}); attempt ${n + 1} in ${wait} ms`;
      if (n === 3) opts.log.warn(`retry storm: ${line}`);
      else opts.log.debug(line);
      await sleep(wait, undefined, { signal });
    }
  }
}

/** Wraps raw calls so that each one is paced by the bucket and retried. */
export function pacedLogsApi(raw: LogsApi, opts: PacingOptions): LogsApi {
  return {
    filterLogEvents: (req, signal) => paced('FilterLogEvents', req.group.id, () => raw.filterLogEvents(req, signal), signal, opts),
    describeLogGroups: (req, signal) => paced('DescribeLogGroups', `prefix ${req.prefix}`, () => raw.describeLogGroups(req, signal), signal, opts),
    describeLogStreams: (req, signal) => paced('DescribeLogStreams', req.group.id, () => raw.describeLogStreams(req, signal), signal, opts),
  };
}

/** `arn:aws:logs:us-east-1:123456789012:log-group:/aws/x:*` → `/aws/x`; a name stays as it is. */
export function groupRef(text: string): GroupRef {
  const m = /^arn:[^:]+:logs:[^:]*:[^:]*:log-group:(.+?)(:\*)?$/.exec(text);
  return m ? { id: text.replace(/:\*$/, ''), name: m[1]!, arn: true } : { id: text, name: text, arn: false };
}

export interface LogsClientOptions {
  region?: string;
  endpoint?: string;
  /** Connect and socket inactivity timeout, ms. */
  timeout: number;
}

/** Raw calls over the real SDK client (one attempt each). The default credential chain applies. */
export async function sdkLogsApi(opts: LogsClientOptions, log: Logger): Promise<LogsApi> {
  const sdk = logsSdk();
  const logger = sdkLogger(log);
  let region = opts.region;
  if (!region) {
    const probe = new sdk.CloudWatchLogsClient({ logger });
    region = await probe.config.region().catch(() => undefined);
    probe.destroy();
    if (!region) throw new PipeError('PIPE_CONFIG_INVALID', 'cloudwatch source: no AWS region: set `region`, AWS_REGION or a profile region');
  }
  // Without `endpoint` the SDK reads AWS_ENDPOINT_URL_CLOUDWATCH_LOGS (and AWS_ENDPOINT_URL) itself.
  const client = new sdk.CloudWatchLogsClient({
    region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    maxAttempts: 1,
    logger,
    requestHandler: { connectionTimeout: opts.timeout, socketTimeout: opts.timeout, logger },
  });
  const target = (g: GroupRef): { logGroupIdentifier: string } | { logGroupName: string } =>
    g.arn ? { logGroupIdentifier: g.id } : { logGroupName: g.id };
  return {
    async filterLogEvents(req, signal) {
      const out = await client.send(new sdk.FilterLogEventsCommand({
        ...target(req.group), startTime: req.startTime, endTime: req.endTime,
        ...(req.streams ? { logStreamNames: req.streams } : {}),
        ...(req.streamPrefix ? { logStreamNamePrefix: req.streamPrefix } : {}),
        ...(req.filterPattern ? { filterPattern: req.filterPattern } : {}),
        ...(req.nextToken ? { nextToken: req.nextToken } : {}),
        ...(req.limit ? { limit: req.limit } : {}),
      }), { abortSignal: signal });
      const events: LogEvent[] = [];
      for (const e of out.events ?? []) {
        if (e.eventId === undefined || e.timestamp === undefined) continue;
        events.push({
          eventId: e.eventId, timestamp: e.timestamp, message: e.message ?? '', logStreamName: e.logStreamName ?? '',
          ...(e.ingestionTime !== undefined ? { ingestionTime: e.ingestionTime } : {}),
        });
      }
      return { events, ...(out.nextToken ? { nextToken: out.nextToken } : {}) };
    },
    async describeLogGroups(req, signal) {
      const out = await client.send(new sdk.DescribeLogGroupsCommand({
        logGroupNamePrefix: req.prefix, ...(req.nextToken ? { nextToken: req.nextToken } : {}),
      }), { abortSignal: signal });
      const groups = (out.logGroups ?? []).flatMap((g) => (g.logGroupName ? [{ id: g.logGroupName, name: g.logGroupName, arn: false }] : []));
      return { groups, ...(out.nextToken ? { nextToken: out.nextToken } : {}) };
    },
    async describeLogStreams(req, signal) {
      const out = await client.send(new sdk.DescribeLogStreamsCommand({
        ...target(req.group), ...(req.prefix ? { logStreamNamePrefix: req.prefix } : {}),
        ...(req.nextToken ? { nextToken: req.nextToken } : {}),
      }), { abortSignal: signal });
      const streams = (out.logStreams ?? []).flatMap((s) => (s.logStreamName
        ? [{ name: s.logStreamName, ...(s.lastEventTimestamp !== undefined ? { lastEventTimestamp: s.lastEventTimestamp } : {}) }] : []));
      return { streams, ...(out.nextToken ? { nextToken: out.nextToken } : {}) };
    },
  };
}
