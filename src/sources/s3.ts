/**
 * The `s3` source: the objects of a bucket, listed with ListObjectsV2 and read with GetObject. An
 * artifact's identity is bucket + key + ETag + size, so an object overwritten with new content is
 * collected again and an unchanged one never.
 *
 * Listing works leaf by leaf: the source's `prefix` (narrowed by `--prefix`) with `layout: none`, or
 * each region of a CloudTrail / VPC Flow Logs tree (plain or Hive-compatible), found with delimiter
 * listings. Each leaf resumes from its listing mark (s3-marks.ts); with `--from/--to` a leaf is
 * listed from the first day of the window and left at the first key past its last day, and keys
 * are kept by the time in their name.
 * Bodies stream into the loader and resume after a failure with a ranged GET (s3-body.ts).
 * With `queue`, objects come from S3 event notifications received from SQS instead (s3-queue.ts),
 * made into artifacts by the same `#artifact`, so either way an object is collected once.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import picomatch from 'picomatch';
import { formatDuration } from '../config/units.js';
import { PipeError } from '../errors.js';
import { quietLogger } from '../ping.js';
import type { ComponentSpec } from '../spec.js';
import type { Artifact, ArtifactSource, ComponentContext, ListContext, Logger } from '../types.js';
import { resumableBody } from './s3-body.js';
import { sdkS3Api, type ListedObject, type S3Api } from './s3-client.js';
import { QueueReceiver } from './s3-queue.js';
import { pingQueue, sdkQueueDeps, type QueueClientOptions, type QueueDeps } from './s3-queue-client.js';
import {
  keyInRange, lastSegment, narrowPrefix, pastRange, placePrefix, rangeStart, SERVICE_DIR, serviceDir,
  type Layout, type Leaf, type PrefixPlace,
} from './s3-layout.js';
import { keyCompare, markStream, MarkTracker, parseMark } from './s3-marks.js';

export const spec: ComponentSpec = {
  kind: 'source',
  type: 's3',
  summary: 'Objects of an S3 bucket: prefix, include/exclude, CloudTrail and VPC Flow layouts with date pruning, listing marks, poll; or as S3 event notifications arrive on an SQS queue (queue mode).',
  options: {
    bucket: { type: 'string', required: true, example: 'my-trail-bucket', description: 'Bucket name (not a URL; the key prefix goes in `prefix`).' },
    prefix: { type: 'string', default: '', example: 'AWSLogs/', description: 'Only keys under this prefix.' },
    region: { type: 'string', example: 'us-east-1', description: "Bucket region. Default: the SDK's chain (AWS_REGION, profile), else us-east-1; S3 region redirects are followed." },
    endpoint: { type: 'string', example: 'http://127.0.0.1:9000', description: 'An S3-compatible endpoint. Default: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL if set (read by the SDK), else AWS.' },
    forcePathStyle: { type: 'boolean', default: false, description: 'Path-style requests (http://host/bucket/key), as MinIO and most S3-compatible stores need.' },
    layout: {
      type: 'enum', values: ['none', 'cloudtrail', 'vpcflow'], default: 'none', example: 'cloudtrail',
      description: 'AWS key layout under the prefix (AWSLogs/[o-org/]<account>/<CloudTrail|vpcflowlogs>/<region>/YYYY/MM/DD/[HH/], or VPC Flow Logs\' Hive-compatible aws-account-id=…/aws-service=vpcflowlogs/aws-region=…/year=…/month=…/day=…/[hour=…/]): accounts and regions are discovered, --from/--to list only the days in range, and each region keeps its own listing mark.',
    },
    include: { type: 'strings', default: ['**'], example: ['**/*.json.gz'], description: 'Globs of keys to collect.' },
    exclude: { type: 'strings', default: [], example: ['**/CloudTrail-Digest/**'], description: 'Globs of keys to leave out.' },
    concurrency: { type: 'integer', default: 8, min: 1, max: 256, description: 'Objects read at once.' },
    poll: { type: 'duration', min: 1000, example: '60s', description: 'Keep listing for new objects this often until stopped (a single pass with --once).' },
    settle: {
      type: 'duration', default: '15m', example: '0s',
      description: 'How old an object must be before the listing mark may pass it, so objects written out of key order are still found by the next run.',
    },
    maxAttempts: { type: 'integer', default: 5, min: 1, max: 20, description: 'Attempts per request (throttling, 5xx, network errors; backoff with jitter), and body failures in a row before an object fails.' },
    timeout: { type: 'duration', default: '30s', min: 100, description: 'Connect timeout, and how long a body may send nothing before it is resumed with a ranged GET.' },
    maxKeys: { type: 'integer', default: 1000, min: 1, max: 1000, description: 'Keys per List call.' },
    queue: {
      type: 'string', example: 'https://sqs.us-east-1.amazonaws.com/123456789012/trail-objects',
      description: 'Queue mode: an SQS queue URL receiving the bucket\'s S3 event notifications (direct, via SNS, or via EventBridge); objects are collected as notified instead of listed (prefix, layout and poll do not apply; backfill --prefix/--from/--to still lists). Endpoint: AWS_ENDPOINT_URL_SQS or AWS_ENDPOINT_URL if set.',
    },
    visibilityTimeout: { type: 'duration', default: '5m', min: 1000, max: 43_200_000, description: 'Queue mode: how long a received message stays invisible; extended every third of it while its objects are collected.' },
    maxMessages: { type: 'integer', default: 10, min: 1, max: 10, description: 'Queue mode: messages per ReceiveMessage call.' },
  },
  check(options) {
    const problems: Array<{ option: string; message: string }> = [];
    const bucket = options.bucket as string | undefined;
    if (bucket !== undefined && (bucket.includes('/') || bucket.includes(':') && !bucket.startsWith('arn:'))) {
      problems.push({ option: 'bucket', message: `expected a bucket name such as my-trail-bucket, got '${bucket}' (a key prefix goes in prefix)` });
    }
    const endpoint = options.endpoint as string | undefined;
    if (endpoint !== undefined && !/^https?:\/\/[^/\s]+/.test(endpoint)) {
      problems.push({ option: 'endpoint', message: `expected a URL such as http://127.0.0.1:9000, got '${endpoint}'` });
    }
    const queue = options.queue as string | undefined;
    if (queue !== undefined) {
      if (!/^https?:\/\/[^/\s]+\/\S+/.test(queue)) {
        problems.push({ option: 'queue', message: `expected an SQS queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/my-queue, got '${queue}'` });
      }
      // Notifications name objects: nothing is listed, so listing options would be silently ignored.
      if (options.prefix) problems.push({ option: 'prefix', message: 'does not apply with queue (objects come from notifications; narrow them with include/exclude)' });
      if (options.layout !== undefined && options.layout !== 'none') problems.push({ option: 'layout', message: 'does not apply with queue (objects come from notifications, not listings)' });
      if (options.poll !== undefined) problems.push({ option: 'poll', message: 'does not apply with queue (the queue is long-polled until stopped)' });
    }
    return problems;
  },
  // Queue mode needs no listing permission: the queue is what is checked.
  ping: (o) => (o.queue ? pingQueue(queueClient(o as unknown as S3Options), quietLogger) : pingBucket(o as unknown as S3Options)),
};

export interface S3Options {
  bucket: string;
  prefix: string;
  region?: string;
  endpoint?: string;
  forcePathStyle: boolean;
  layout: Layout;
  include: string[];
  exclude: string[];
  concurrency: number;
  poll?: number;
  settle: number;
  maxAttempts: number;
  timeout: number;
  maxKeys: number;
  queue?: string;
  visibilityTimeout: number;
  maxMessages: number;
}

type State = Awaited<ReturnType<ListContext['artifactState']>>;

/** Listing failures a poller waits out (throttling, network, 5xx after the SDK's retries). */
const LIST_AGAIN = new Set(['PIPE_SOURCE_THROTTLED', 'PIPE_SOURCE_FAILED']);

export class S3Source implements ArtifactSource {
  readonly kind = 'artifacts';
  readonly concurrency: number;
  #o: S3Options;
  #log: Logger;
  #makeApi: () => Promise<S3Api>;
  #api: S3Api | undefined;
  #include: (key: string) => boolean;
  #exclude: (key: string) => boolean;
  /** Polling: identities handed to the engine and not yet seen finished, so a re-listing never hands one out twice. */
  #handedOut = new Set<string>();
  #makeQueue: (() => Promise<QueueDeps>) | undefined;

  constructor(o: S3Options, log: Logger, makeApi: () => Promise<S3Api>, makeQueue?: () => Promise<QueueDeps>) {
    this.#o = o;
    this.#log = log;
    this.#makeApi = makeApi;
    this.#makeQueue = makeQueue;
    this.concurrency = o.concurrency;
    this.#include = picomatch(o.include, { dot: true });
    this.#exclude = o.exclude.length ? picomatch(o.exclude, { dot: true }) : () => false;
  }

  async *list(ctx: ListContext): AsyncGenerator<Artifact> {
    const root = narrowPrefix(this.#o.prefix, ctx.scope.prefix);
    if (root === undefined) {
      throw new PipeError('PIPE_USAGE', `--prefix ${ctx.scope.prefix}: outside the source's prefix s3://${this.#o.bucket}/${this.#o.prefix}`);
    }
    this.#api ??= await this.#makeApi();
    const { prefix, from, to } = ctx.scope;
    if (this.#o.queue && this.#makeQueue && prefix === undefined && !from && !to) {
      // Queue mode (s3-queue.ts); a backfill's --prefix/--from/--to still lists the bucket.
      const receiver = new QueueReceiver({
        bucket: this.#api.bucket, visibilityTimeout: this.#o.visibilityTimeout, maxMessages: this.#o.maxMessages,
        cap: Math.max(this.#o.maxMessages, this.concurrency * 2), log: this.#log,
        wanted: (key, size) => this.#wanted({ key, etag: '', size: size ?? 1, lastModified: new Date(0) }),
        artifact: (obj) => this.#artifact(obj),
      }, await this.#makeQueue());
      yield* receiver.receive(ctx);
      return;
    }
    const polling = !ctx.once && this.#o.poll !== undefined;
    for (let pass = 0; ; pass++) {
      try {
        yield* this.#pass(root, ctx, polling, pass);
      } catch (err) {
        // A poller outlives a bad minute of S3: after a first pass that worked, a listing that still
        // fails after its retries is reported and tried again at the next poll.
        if (!polling || pass === 0 || ctx.signal.aborted || !(err instanceof PipeError) || !LIST_AGAIN.has(err.code)) throw err;
        ctx.log.warn(`${err.message}; listing again in ${formatDuration(this.#o.poll!)}`, { code: err.code });
      }
      if (!polling || ctx.signal.aborted) return;
      const slept = await sleep(this.#o.poll, true, { signal: ctx.signal }).catch(() => false);
      if (!slept) return;
      for (const id of this.#handedOut) if (isFinished(await ctx.artifactState(id))) this.#handedOut.delete(id);
    }
  }

  async *#pass(root: string, ctx: ListContext, polling: boolean, pass: number): AsyncGenerator<Artifact> {
    let leaves = 0;
    for await (const leaf of this.#leaves(root, ctx.signal)) {
      leaves++;
      yield* this.#listLeaf(leaf, ctx, polling);
      if (ctx.signal.aborted) return;
    }
    if (leaves === 0 && pass === 0) {
      const dir = SERVICE_DIR[this.#o.layout as Exclude<Layout, 'none'>];
      ctx.log.warn(`no ${dir}/<region>/ prefixes under s3://${this.#o.bucket}/${root} (layout ${this.#o.layout}): nothing to list; check prefix and layout`);
    }
  }

  /** The leaves under `root`: itself without a layout, else every region found (or `root`, if below a region). */
  async *#leaves(root: string, signal: AbortSignal): AsyncGenerator<Leaf> {
    if (this.#o.layout === 'none') yield { prefix: root };
    else yield* this.#discover(placePrefix(root), signal);
  }

  async *#discover(p: PrefixPlace, signal: AbortSignal): AsyncGenerator<Leaf> {
    if (p.level === 'leaf') {
      yield { prefix: p.base + p.partial, ...(p.region ? { region: p.region } : {}) };
    } else if (p.level === 'service') {
      const dir = serviceDir(this.#o.layout as Exclude<Layout, 'none'>, p.base);
      if (dir.startsWith(p.partial)) yield* this.#discover({ base: `${p.base}${dir}/`, partial: '', level: 'region' }, signal);
    } else {
      for await (const dir of this.#dirs(p.base + p.partial, signal)) {
        if (p.level === 'region') yield { prefix: dir, region: dir };
        else if (p.level === 'owner' && lastSegment(dir).startsWith('o-')) yield* this.#discover({ base: dir, partial: '', level: 'account' }, signal);
        else yield* this.#discover({ base: dir, partial: '', level: 'service' }, signal);
      }
    }
  }

  /** The "directories" under a prefix: a delimiter listing's common prefixes. */
  async *#dirs(prefix: string, signal: AbortSignal): AsyncGenerator<string> {
    let token: string | undefined;
    do {
      const page = await this.#api!.list({ prefix, delimiter: '/', ...(token ? { continuationToken: token } : {}) }, signal);
      yield* page.prefixes;
      token = page.next;
    } while (token && !signal.aborted);
  }

  async *#listLeaf(leaf: Leaf, ctx: ListContext, polling: boolean): AsyncGenerator<Artifact> {
    const o = this.#o;
    const api = this.#api!;
    const { from, to } = ctx.scope;
    const stream = markStream(api.bucket, leaf.prefix, o.include, o.exclude);
    const stored = parseMark(await ctx.position(stream));
    // --retry-failed lists from the leaf's start: failed objects sit before the mark.
    const resumeAt = ctx.retryFailed ? undefined : stored;
    const windowStart = leaf.region !== undefined && from ? rangeStart(leaf.region, from) : undefined;
    const startAfter = windowStart !== undefined && (resumeAt === undefined || keyCompare(windowStart, resumeAt) > 0) ? windowStart : resumeAt;
    const tracker = new MarkTracker(ctx, stream, stored, startAfter === resumeAt, o.settle);
    let listed = 0;
    let handed = 0;
    let token: string | undefined;
    try {
      do {
        const page = await api.list({
          prefix: leaf.prefix, maxKeys: o.maxKeys,
          ...(token ? { continuationToken: token } : startAfter ? { startAfter } : {}),
        }, ctx.signal);
        for (const obj of page.objects) {
          if (ctx.signal.aborted) return;
          listed++;
          if (leaf.region !== undefined && to && pastRange(obj.key, leaf.region, to)) return;
          if (!this.#wanted(obj)) {
            tracker.passed(obj.key);
            continue;
          }
          const inWindow = leaf.region !== undefined ? keyInRange(obj.key, leaf.region, from, to)
            : (!from || obj.lastModified >= from) && (!to || obj.lastModified < to);
          if (!inWindow) {
            tracker.listed(obj.key, undefined, obj.lastModified);
            continue;
          }
          const artifact = this.#artifact(obj);
          tracker.listed(obj.key, artifact.identity, obj.lastModified);
          if (polling && !(await this.#handOut(artifact.identity, ctx))) continue;
          handed++;
          yield artifact;
        }
        await tracker.advance();
        token = page.next;
      } while (token && !ctx.signal.aborted);
    } finally {
      if (!ctx.signal.aborted) await tracker.advance();
      this.#log.debug(`listed s3://${api.bucket}/${leaf.prefix}`, { start_after: startAfter, keys: listed, handed_out: handed, mark: tracker.mark });
    }
  }

  #wanted(obj: ListedObject): boolean {
    // A zero-byte key ending in `/` is a "folder" made by the console, not data.
    if (obj.key.endsWith('/') && obj.size === 0) return false;
    return this.#include(obj.key) && !this.#exclude(obj.key);
  }

  /** Polling: whether to hand an identity to the engine (not while this process is still collecting it). */
  async #handOut(identity: string, ctx: ListContext): Promise<boolean> {
    if (this.#handedOut.has(identity)) {
      if (!isFinished(await ctx.artifactState(identity))) return false;
      this.#handedOut.delete(identity);
      return true;
    }
    const state = await ctx.artifactState(identity);
    if (!isFinished(state) && !(state?.status === 'failed' && !ctx.retryFailed)) this.#handedOut.add(identity);
    return true;
  }

  #artifact(obj: ListedObject): Artifact {
    const api = this.#api!;
    const o = this.#o;
    const uri = `s3://${api.bucket}/${obj.key}`;
    return {
      identity: `s3:${api.bucket}/${obj.key}:${obj.etag.replace(/"/g, '')}:${obj.size}`,
      uri,
      size: obj.size,
      mtime: obj.lastModified,
      // A run resuming mid-object asks for `start`: a ranged GET pinned to the ETag, like a resumed body.
      seekable: true,
      open: async ({ signal, start = 0 }) => {
        if (start > 0 && start >= obj.size) return Readable.from([]);
        const first = await api.get({ key: obj.key, etag: obj.etag, ...(start > 0 ? { offset: start } : {}) }, signal);
        return resumableBody(first, {
          uri, size: obj.size, start, maxAttempts: o.maxAttempts, idleTimeout: o.timeout, signal, log: this.#log,
          open: (offset, s) => api.get({ key: obj.key, etag: obj.etag, offset }, s),
        });
      },
    };
  }
}

/** Done or skipped: nothing more will happen to it in this process. (A failed one waits for --retry-failed.) */
function isFinished(state: State): boolean {
  return state?.status === 'done' || state?.status === 'skipped';
}

/** `pipe validate --ping`: one List call of at most one key under the prefix, with the client a run uses. */
async function pingBucket(o: S3Options): Promise<string> {
  const api = await sdkS3Api({
    bucket: o.bucket, forcePathStyle: o.forcePathStyle, maxAttempts: o.maxAttempts, timeout: o.timeout,
    ...(o.region ? { region: o.region } : {}), ...(o.endpoint ? { endpoint: o.endpoint } : {}),
  }, quietLogger);
  const page = await api.list({ prefix: o.prefix, maxKeys: 1 }, AbortSignal.timeout(Math.max(o.timeout * o.maxAttempts, 5000)));
  return `ok: s3://${o.bucket}/${o.prefix} can be listed (${page.objects.length ? `first key ${page.objects[0]!.key}` : 'no keys yet'})`;
}

export function create(options: Record<string, unknown>, ctx: ComponentContext): ArtifactSource {
  const o = options as unknown as S3Options;
  const client = {
    bucket: o.bucket, forcePathStyle: o.forcePathStyle, maxAttempts: o.maxAttempts, timeout: o.timeout,
    ...(o.region ? { region: o.region } : {}), ...(o.endpoint ? { endpoint: o.endpoint } : {}),
  };
  return new S3Source(o, ctx.log, () => sdkS3Api(client, ctx.log), o.queue ? () => sdkQueueDeps(queueClient(o), ctx.log) : undefined);
}

function queueClient(o: S3Options): QueueClientOptions {
  return {
    queue: o.queue!, bucket: o.bucket, forcePathStyle: o.forcePathStyle, maxAttempts: o.maxAttempts, timeout: o.timeout,
    ...(o.region ? { region: o.region } : {}), ...(o.endpoint ? { endpoint: o.endpoint } : {}),
  };
}
