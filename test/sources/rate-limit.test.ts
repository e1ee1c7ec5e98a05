/** The token bucket every CloudWatch call draws from, and the retries around each call. */
import { describe, expect, it } from 'vitest';
import { PipeError } from '../../src/errors.js';
import { callError, groupRef, paced, transientFault } from '../../src/sources/cloudwatch-api.js';
import { backoffDelay, TokenBucket } from '../../src/sources/rate-limit.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const sdkError = (name: string, status: number, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status }, ...extra });

/**
 * Whether `p` settles without waiting for any timer: a take that finds a token resolves in
 * microtasks, before setImmediate runs, however loaded the machine is.
 */
function settlesAtOnce(p: Promise<unknown>): Promise<boolean> {
  return Promise.race([p.then(() => true), new Promise<boolean>((res) => setImmediate(() => res(false)))]);
}

describe('TokenBucket', () => {
  it('spaces takes at least 1/rate apart, for concurrent callers too, in arrival order', async () => {
    const bucket = new TokenBucket(50);
    const times: number[] = [];
    const order: number[] = [];
    const t0 = performance.now();
    const takes = Array.from({ length: 11 }, (_, i) => bucket.take().then(() => {
      times.push(performance.now() - t0);
      order.push(i);
    }));
    expect(await settlesAtOnce(takes[0]!), 'the first take finds a token').toBe(true);
    await Promise.all(takes);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(19);
    expect(times[10]).toBeGreaterThanOrEqual(200);
  });

  it('allows a burst of `burst` takes, then the rate', async () => {
    const bucket = new TokenBucket(20, 3);
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) expect(await settlesAtOnce(bucket.take()), `take ${i} of the burst`).toBe(true);
    await bucket.take();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(49);
  });

  it('gives up when the signal aborts, and the next caller still gets its turn', async () => {
    const bucket = new TokenBucket(5);
    await bucket.take();
    const ac = new AbortController();
    const waiting = bucket.take(ac.signal);
    ac.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    const t0 = performance.now();
    await bucket.take();
    expect(performance.now() - t0).toBeLessThan(250);
  });
});

describe('backoff and retries', () => {
  it('full jitter: uniform up to min(cap, base·2^attempt)', () => {
    const opts = { base: 100, cap: 1000 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, opts, () => 0.999999))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay(3, opts, () => 0)).toBe(0);
    expect(backoffDelay(2, opts, () => 0.5)).toBe(200);
  });

  it.each([
    [sdkError('ThrottlingException', 400), 'throttled'],
    [sdkError('Whatever', 429), 'throttled'],
    [sdkError('ServiceUnavailableException', 503), 'server'],
    [sdkError('InternalFailure', 500), 'server'],
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'network'],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'network'],
    [sdkError('AccessDeniedException', 400), undefined],
    [sdkError('ResourceNotFoundException', 400), undefined],
    [sdkError('InvalidParameterException', 400), undefined],
  ])('%s is %s', (err, kind) => {
    expect(transientFault(err)).toBe(kind);
  });

  const opts = (maxAttempts: number) => ({ bucket: new TokenBucket(1000, 1000), maxAttempts, backoff: { base: 1, cap: 5 }, log: quiet });

  it('retries transient faults, each attempt through the bucket, until one succeeds', async () => {
    const faults = [sdkError('ThrottlingException', 400), sdkError('InternalFailure', 500), Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })];
    let calls = 0;
    const out = await paced('FilterLogEvents', '/g', async () => {
      const f = faults[calls++];
      if (f) throw f;
      return 'ok';
    }, new AbortController().signal, opts(5));
    expect(out).toBe('ok');
    expect(calls).toBe(4);
  });

  it('fails at once on a fault that is not transient, with the permission it needs', async () => {
    let calls = 0;
    const err = await paced('FilterLogEvents', '/g', async () => {
      calls++;
      throw sdkError('AccessDeniedException', 400);
    }, new AbortController().signal, opts(5)).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect(err).toBeInstanceOf(PipeError);
    expect((err as PipeError).code).toBe('PIPE_SOURCE_FAILED');
    expect((err as PipeError).message).toBe('cloudwatch FilterLogEvents /g: AccessDeniedException (HTTP 400): AccessDeniedException happened (this needs logs:FilterLogEvents on the log group)');
  });

  it('gives up after maxAttempts of throttling with PIPE_SOURCE_THROTTLED', async () => {
    let calls = 0;
    const err = await paced('DescribeLogGroups', 'prefix /aws/', async () => {
      calls++;
      throw sdkError('ThrottlingException', 400);
    }, new AbortController().signal, opts(3)).catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect((err as PipeError).code).toBe('PIPE_SOURCE_THROTTLED');
    expect((err as PipeError).message).toBe('cloudwatch DescribeLogGroups prefix /aws/: ThrottlingException (HTTP 400): ThrottlingException happened, after 3 attempts');
  });

  it('names missing credentials without echoing anything else', () => {
    const e = callError(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }), 'FilterLogEvents', '/g', 1);
    expect(e.message).toBe('cloudwatch FilterLogEvents /g: no AWS credentials found (environment, profile, SSO or instance role)');
  });
});

describe('log group references', () => {
  it.each([
    ['/aws/cloudtrail/x', { id: '/aws/cloudtrail/x', name: '/aws/cloudtrail/x', arn: false }],
    ['arn:aws:logs:us-east-1:123456789012:log-group:/aws/cloudtrail/x', { id: 'arn:aws:logs:us-east-1:123456789012:log-group:/aws/cloudtrail/x', name: '/aws/cloudtrail/x', arn: true }],
    ['arn:aws:logs:us-east-1:123456789012:log-group:/aws/cloudtrail/x:*', { id: 'arn:aws:logs:us-east-1:123456789012:log-group:/aws/cloudtrail/x', name: '/aws/cloudtrail/x', arn: true }],
  ])('%s', (text, ref) => {
    expect(groupRef(text)).toEqual(ref);
  });
});
