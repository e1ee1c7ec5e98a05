/**
 * The queue-mode receiver in-process, over a scripted SQS: deletion once every object of a message
 * settled, visibility extended meanwhile and given up or reset on `elsewhere` / `stopped`,
 * backpressure, look-ups of notifications without an ETag, receive errors, and the helpers that
 * pick the region and endpoint and name the queue in errors.
 */
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateComponentOptions } from '../../src/config/options.js';
import { PipeError } from '../../src/errors.js';
import { create, spec } from '../../src/sources/s3.js';
import type { ListedObject } from '../../src/sources/s3-client.js';
import { QueueReceiver } from '../../src/sources/s3-queue.js';
import {
  pingQueue, queueError, queueRegion, sdkQueueDeps, sqsEndpoint, type HeadResult, type QueueApi, type QueueMessage,
} from '../../src/sources/s3-queue-client.js';
import type { Artifact, ArtifactRef, ArtifactSource, ListContext } from '../../src/types.js';
import { AWS_TEST_ENV, startS3, type S3Server } from '../helpers/s3.js';
import { queues, s3Notification, type Queues } from '../helpers/sqs.js';

const URL_ = 'https://sqs.us-east-1.amazonaws.com/123456789012/q';

function note(key: string, opts: { bucket?: string; etag?: string | null; size?: number } = {}): string {
  const object: Record<string, unknown> = { key, size: opts.size ?? 10 };
  if (opts.etag !== null) object.eTag = opts.etag ?? `etag-${key}`;
  return JSON.stringify({ Records: [{ eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', eventTime: '2024-03-01T00:00:00Z', s3: { bucket: { name: opts.bucket ?? 'b' }, object } }] });
}

class FakeQueue implements QueueApi {
  readonly url = URL_;
  batches: Array<QueueMessage[] | Error> = [];
  deleted: string[] = [];
  visibility: Array<[string, number]> = [];
  receives = 0;
  async receive(req: { max: number; waitSeconds: number; visibilitySeconds: number }, signal: AbortSignal): Promise<QueueMessage[]> {
    this.receives++;
    const next = this.batches.shift();
    if (next instanceof Error) throw next;
    if (next) return next;
    // An empty long poll: a short wait, cut by the signal.
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.min(req.waitSeconds * 1000, 20));
      signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
    });
    signal.throwIfAborted();
    return [];
  }
  async delete(receipt: string): Promise<void> {
    this.deleted.push(receipt);
  }
  async setVisibility(receipt: string, seconds: number): Promise<void> {
    this.visibility.push([receipt, seconds]);
  }
  async depth(): Promise<{ visible: number; inFlight: number }> {
    return { visible: 0, inFlight: 0 };
  }
}

const msg = (id: string, body: string): QueueMessage => ({ id, receipt: `r-${id}`, body });

function setup(opts: { cap?: number; vt?: number; once?: boolean; head?: (key: string) => Promise<HeadResult | undefined> } = {}) {
  const queue = new FakeQueue();
  const warnings: string[] = [];
  const skipped: Array<{ ref: ArtifactRef; reason: string }> = [];
  const log = { debug() {}, info() {}, warn: (m: string) => { warnings.push(m); }, error() {} };
  const heads: string[] = [];
  const receiver = new QueueReceiver({
    bucket: 'b', visibilityTimeout: opts.vt ?? 30_000, maxMessages: 10, cap: opts.cap ?? 100, log,
    wanted: (key) => !key.startsWith('skip/'),
    artifact: (o: ListedObject): Artifact => ({
      identity: `s3:b/${o.key}:${o.etag.replace(/"/g, '')}:${o.size}`, uri: `s3://b/${o.key}`, size: o.size, mtime: o.lastModified,
      open: async () => Readable.from([]),
    }),
  }, {
    queue,
    head: async (key) => {
      heads.push(key);
      return opts.head ? opts.head(key) : { etag: '"h"', size: 3, lastModified: new Date(0) };
    },
  });
  const stop = new AbortController();
  const ctx = {
    signal: stop.signal, scope: {}, once: opts.once ?? true, log,
    position: async () => undefined, savePosition: async () => {}, artifactState: async () => undefined,
    recordSkipped: async (ref: ArtifactRef, reason: string) => { skipped.push({ ref, reason }); },
  } as ListContext;
  return { queue, receiver, ctx, stop, warnings, skipped, heads };
}

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('QueueReceiver', () => {
  it('deletes a message once every object it names settled done or failed', async () => {
    const { queue, receiver, ctx } = setup();
    const two = JSON.parse(note('a')) as { Records: unknown[] };
    two.Records.push(...(JSON.parse(note('b')) as { Records: unknown[] }).Records);
    queue.batches.push([msg('1', JSON.stringify(two)), msg('2', note('c'))]);
    const it = receiver.receive(ctx)[Symbol.asyncIterator]();
    const a = (await it.next()).value as Artifact;
    const b = (await it.next()).value as Artifact;
    const c = (await it.next()).value as Artifact;
    expect([a.identity, b.identity, c.identity]).toEqual(['s3:b/a:etag-a:10', 's3:b/b:etag-b:10', 's3:b/c:etag-c:10']);
    expect(a.mtime).toEqual(new Date('2024-03-01T00:00:00Z'));
    a.settle!('done');
    a.settle!('stopped'); // only the first outcome counts
    await tick();
    expect(queue.deleted).toEqual([]);
    b.settle!('failed');
    c.settle!('done');
    const end = await it.next();
    expect(end.done).toBe(true);
    expect(queue.deleted.sort()).toEqual(['r-1', 'r-2']);
    expect(queue.visibility).toEqual([]);
    expect(receiver.counts).toMatchObject({ messages: 2, objects: 3, deleted: 2 });
  });

  it('extends visibility every third of the timeout while objects are unsettled; stops for elsewhere; resets to 0 for stopped', async () => {
    const { queue, receiver, ctx } = setup({ vt: 1_500 });
    queue.batches.push([msg('1', note('a')), msg('2', note('b'))]);
    const it = receiver.receive(ctx)[Symbol.asyncIterator]();
    const a = (await it.next()).value as Artifact;
    const b = (await it.next()).value as Artifact;
    await tick(1_100);
    const extended = queue.visibility.filter(([r]) => r === 'r-1');
    expect(extended.length).toBeGreaterThanOrEqual(2);
    expect(extended.every(([, s]) => s === 2)).toBe(true);
    queue.visibility.length = 0;
    a.settle!('elsewhere');
    b.settle!('stopped');
    await tick(1_100);
    expect(queue.visibility).toEqual([['r-2', 0]]);
    expect(queue.deleted).toEqual([]);
    await it.return?.(undefined);
  });

  it('does not receive while `cap` objects are unsettled', async () => {
    const { queue, receiver, ctx } = setup({ cap: 2, once: false });
    queue.batches.push([msg('1', note('a')), msg('2', note('b'))], [msg('3', note('c'))]);
    const it = receiver.receive(ctx)[Symbol.asyncIterator]();
    const a = (await it.next()).value as Artifact;
    await it.next();
    const third = it.next();
    await tick(50);
    expect(queue.receives).toBe(1);
    a.settle!('done');
    expect(((await third).value as Artifact).uri).toBe('s3://b/c');
    expect(queue.receives).toBe(2);
    await it.return?.(undefined);
  });

  it('test events, non-create events, other buckets and excluded keys: counted, the message deleted', async () => {
    const { queue, receiver, ctx, warnings } = setup();
    queue.batches.push([
      msg('1', JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'b' })),
      msg('2', note('a').replace('ObjectCreated:Put', 'ObjectRemoved:Delete')),
      msg('3', note('a', { bucket: 'other' })),
      msg('4', note('a', { bucket: 'other' })),
      msg('5', note('skip/x')),
    ]);
    const got: Artifact[] = [];
    for await (const a of receiver.receive(ctx)) got.push(a);
    expect(got).toEqual([]);
    expect(queue.deleted.sort()).toEqual(['r-1', 'r-2', 'r-3', 'r-4', 'r-5']);
    expect(receiver.counts).toMatchObject({ messages: 5, testEvents: 1, nonCreate: 1, otherBucket: 2, filtered: 1, unparseable: 0 });
    expect(warnings.filter((w) => w.includes('bucket other'))).toHaveLength(1);
  });

  it('an unparseable message is recorded once, left in the queue, and does not keep --once running', async () => {
    const { queue, receiver, ctx, skipped, warnings } = setup();
    queue.batches.push([msg('bad', 'nope')], [msg('bad', 'nope')], [msg('bad', 'nope')]);
    for await (const a of receiver.receive(ctx)) void a;
    expect(skipped).toEqual([{ ref: { identity: 'sqs:bad', uri: `${URL_}#bad` }, reason: "not JSON: 'nope'" }]);
    expect(warnings.filter((w) => w.includes('redrive'))).toHaveLength(1);
    expect(queue.deleted).toEqual([]);
    expect(queue.visibility).toEqual([]);
    expect(queue.receives).toBe(2);
  });

  it('a notification without an ETag is looked up; one whose object is gone settles the message', async () => {
    const { queue, receiver, ctx, heads } = setup({ head: async (key) => (key === 'gone' ? undefined : { etag: '"h"', size: 3, lastModified: new Date(5) }) });
    queue.batches.push([msg('1', note('here', { etag: null })), msg('2', note('gone', { etag: null }))]);
    const it = receiver.receive(ctx)[Symbol.asyncIterator]();
    const a = (await it.next()).value as Artifact;
    expect(a).toMatchObject({ identity: 's3:b/here:h:3', mtime: new Date(5) });
    a.settle!('done');
    expect((await it.next()).done).toBe(true);
    expect(heads).toEqual(['here', 'gone']);
    expect(queue.deleted.sort()).toEqual(['r-1', 'r-2']);
  });

  it('a look-up that fails leaves the message for later', async () => {
    const { queue, receiver, ctx, warnings } = setup({ head: async () => { throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }); } });
    queue.batches.push([msg('1', note('a', { etag: null }))]);
    for await (const a of receiver.receive(ctx)) void a;
    expect(queue.deleted).toEqual([]);
    expect(warnings.join('\n')).toMatch(/s3:\/\/b\/a: AccessDenied \(HTTP 403\).*its message is left in the queue/);
  });

  it('a message received again while its objects are in flight is not handed out twice', async () => {
    const { queue, receiver, ctx } = setup();
    queue.batches.push([msg('1', note('a'))], [{ ...msg('1', note('a')), receipt: 'r-1-again' }]);
    const it = receiver.receive(ctx)[Symbol.asyncIterator]();
    const a = (await it.next()).value as Artifact;
    const next = it.next();
    await tick(30);
    a.settle!('done');
    expect((await next).done).toBe(true);
    expect(queue.deleted).toEqual(['r-1-again']);
  });

  it('when the engine breaks off, what it did not take in is stopped and unread messages are made visible', async () => {
    const { queue, receiver, ctx } = setup();
    queue.batches.push([msg('1', note('a')), msg('2', note('b')), msg('3', note('c'))]);
    const it = receiver.receive(ctx)[Symbol.asyncIterator]();
    // The engine stops at the first artifact without taking it in.
    await it.next();
    await it.return?.(undefined);
    await tick();
    expect(queue.visibility.sort()).toEqual([['r-1', 0], ['r-2', 0], ['r-3', 0]]);
    expect(queue.deleted).toEqual([]);
  });

  it('receive errors: transient ones are retried until stopped; others, or any with --once, fail naming the queue', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400, attempts: 5 } });
    const run = setup({ once: false });
    run.queue.batches.push(throttled, [msg('1', note('a'))]);
    const it = run.receiver.receive(run.ctx)[Symbol.asyncIterator]();
    expect(((await it.next()).value as Artifact).uri).toBe('s3://b/a');
    expect(run.warnings[0]).toMatch(new RegExp(`^queue ${URL_}: ReceiveMessage: ThrottlingException \\(HTTP 400\\): Rate exceeded, after 5 attempts; receiving again in`));
    run.stop.abort();
    expect((await it.next()).done).toBe(true);

    const once = setup();
    once.queue.batches.push(throttled);
    await expect(async () => { for await (const a of once.receiver.receive(once.ctx)) void a; }).rejects.toMatchObject({ code: 'PIPE_SOURCE_THROTTLED' });

    const denied = setup({ once: false });
    denied.queue.batches.push(Object.assign(new Error('not authorized'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }));
    await expect(async () => { for await (const a of denied.receiver.receive(denied.ctx)) void a; }).rejects.toThrow(/queue .*: ReceiveMessage: AccessDenied \(HTTP 403\): not authorized \(queue mode needs sqs:ReceiveMessage/);
  });
});

describe('queue helpers', () => {
  it.each([
    ['https://sqs.eu-west-1.amazonaws.com/123456789012/q', 'eu-west-1'],
    ['https://sqs-fips.us-gov-west-1.amazonaws.com/123456789012/q', 'us-gov-west-1'],
    ['https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q', 'cn-north-1'],
    ['https://ap-southeast-2.queue.amazonaws.com/123456789012/q', 'ap-southeast-2'],
    ['https://queue.amazonaws.com/123456789012/q', 'us-east-1'],
    ['https://vpce-0123-abcd.sqs.us-west-2.vpce.amazonaws.com/123456789012/q', 'us-west-2'],
    ['http://sqs.us-east-1.localhost:4566/000000000000/q', undefined],
    ['not a url', undefined],
  ])('the region of %s', (url, region) => {
    expect(queueRegion(url)).toBe(region);
  });

  it('the SQS endpoint: AWS_ENDPOINT_URL_SQS, else AWS_ENDPOINT_URL, unless configured endpoints are ignored', () => {
    expect(sqsEndpoint({ AWS_ENDPOINT_URL_SQS: 'http://a', AWS_ENDPOINT_URL: 'http://b' })).toBe('http://a');
    expect(sqsEndpoint({ AWS_ENDPOINT_URL: 'http://b' })).toBe('http://b');
    expect(sqsEndpoint({})).toBeUndefined();
    expect(sqsEndpoint({ AWS_ENDPOINT_URL_SQS: 'http://a', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' })).toBeUndefined();
  });

  it.each([
    [{ name: 'QueueDoesNotExist', message: 'The specified queue does not exist.', $metadata: { httpStatusCode: 400 } }, 'PIPE_SOURCE_FAILED', 'the queue does not exist (QueueDoesNotExist): check the queue URL'],
    [{ name: 'AWS.SimpleQueueService.NonExistentQueue', $metadata: { httpStatusCode: 400 } }, 'PIPE_SOURCE_FAILED', 'the queue does not exist'],
    [{ name: 'KmsAccessDenied', message: 'x', $metadata: { httpStatusCode: 400 } }, 'PIPE_SOURCE_FAILED', 'kms:Decrypt'],
    [{ name: 'CredentialsProviderError', message: 'Could not load credentials from any providers' }, 'PIPE_SOURCE_FAILED', 'no AWS credentials found'],
    [{ name: 'OverLimit', message: 'too many', $metadata: { httpStatusCode: 403 } }, 'PIPE_SOURCE_FAILED', 'sqs:ReceiveMessage'],
    [{ name: 'RequestThrottled', message: 'slow down', $metadata: { httpStatusCode: 400 } }, 'PIPE_SOURCE_THROTTLED', 'RequestThrottled (HTTP 400): slow down'],
    [{ name: 'InternalError', $metadata: { httpStatusCode: 500 } }, 'PIPE_SOURCE_FAILED', 'InternalError (HTTP 500)'],
  ])('queueError(%o)', (err, code, text) => {
    const e = queueError(err, URL_, 'ReceiveMessage');
    expect(e.code).toBe(code);
    expect(e.message).toContain(`queue ${URL_}: ReceiveMessage: `);
    expect(e.message).toContain(text);
    expect(queueError(e, URL_, 'x')).toBe(e);
    expect(e).toBeInstanceOf(PipeError);
  });
});

describe('over the AWS SDK, against fauxqs', () => {
  let s3: S3Server;
  let q: Queues;
  const saved = { ...process.env };
  beforeAll(async () => {
    s3 = await startS3();
    q = queues(s3.url);
    Object.assign(process.env, AWS_TEST_ENV, { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', AWS_ENDPOINT_URL_SQS: s3.url });
    await s3.createBucket('sdk');
  });
  afterAll(async () => {
    process.env = saved;
    q?.close();
    await s3?.close();
  });
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  const client = (queue: string) => ({ queue, bucket: 'sdk', endpoint: s3.url, forcePathStyle: true, maxAttempts: 2, timeout: 5_000 });

  it('receives, extends, deletes, looks up objects, and reports the depth', async () => {
    const { url } = await q.create('sdk-calls');
    const etag = await s3.put('sdk', 'k.txt', 'hello');
    await q.send(url, 'one');
    const deps = await sdkQueueDeps(client(url), quiet);
    const got = await deps.queue.receive({ max: 10, waitSeconds: 1, visibilitySeconds: 30 }, AbortSignal.timeout(5_000));
    expect(got.map((m) => m.body)).toEqual(['one']);
    expect(await deps.queue.depth(AbortSignal.timeout(5_000))).toEqual({ visible: 0, inFlight: 1 });
    await deps.queue.setVisibility(got[0]!.receipt, 0);
    expect(await deps.queue.depth(AbortSignal.timeout(5_000))).toEqual({ visible: 1, inFlight: 0 });
    const again = await deps.queue.receive({ max: 10, waitSeconds: 1, visibilitySeconds: 30 }, AbortSignal.timeout(5_000));
    await deps.queue.delete(again[0]!.receipt);
    expect(await q.depth(url)).toEqual({ visible: 0, notVisible: 0 });
    expect(await deps.head('k.txt', AbortSignal.timeout(5_000))).toMatchObject({ etag: `"${etag}"`, size: 5 });
    expect(await deps.head('missing.txt', AbortSignal.timeout(5_000))).toBeUndefined();
    expect(await pingQueue(client(url), quiet)).toBe(`ok: queue ${url} can be read (0 messages waiting, 0 in flight)`);
    await expect(pingQueue(client(url.replace('sdk-calls', 'no-such-queue')), quiet)).rejects.toThrow(/no-such-queue: GetQueueAttributes: the queue does not exist/);
  });

  it('the s3 source in queue mode hands out artifacts that read the notified objects; a stop mid-poll returns at once', async () => {
    const { url } = await q.create('sdk-source');
    const etag = await s3.put('sdk', 'a b/c.txt', 'line\n');
    await q.send(url, s3Notification('sdk', 'a b/c.txt', etag, 5));
    const { options, problems } = validateComponentOptions(spec, { bucket: 'sdk', endpoint: s3.url, forcePathStyle: true, queue: url, visibilityTimeout: '3s' }, 'source');
    expect(problems).toEqual([]);
    const src = create(options, { pipeline: 't', store: undefined as never, log: quiet, baseDir: '.' }) as ArtifactSource;
    const stop = new AbortController();
    const ctx = {
      signal: stop.signal, scope: {}, once: false, log: quiet,
      position: async () => undefined, savePosition: async () => {}, artifactState: async () => undefined, recordSkipped: async () => {},
    } as ListContext;
    const it = src.list(ctx)[Symbol.asyncIterator]();
    const a = (await it.next()).value as Artifact;
    expect(a).toMatchObject({ identity: `s3:sdk/a b/c.txt:${etag}:5`, uri: 's3://sdk/a b/c.txt' });
    expect(await text(await a.open({ signal: AbortSignal.timeout(5_000) }))).toBe('line\n');
    // The next pull long-polls; a stop with the object still in flight lets the poll run until it settles.
    const next = it.next();
    await tick(200);
    const stoppedAt = Date.now();
    stop.abort();
    expect((await next).done).toBe(true);
    expect(Date.now() - stoppedAt).toBeLessThan(1_000);
    a.settle!('stopped');
    await tick(800);
    expect(await q.depth(url)).toEqual({ visible: 1, notVisible: 0 });
  });
});
