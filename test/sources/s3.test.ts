/**
 * The s3 source in-process, with the real AWS SDK over HTTP against a real S3-compatible server
 * (fauxqs) behind a counting, fault-injecting proxy: listing, identities, odd keys, ranged resumes,
 * objects that vanish or change, throttling, errors that name the bucket and key, layouts, poll.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { validateComponentOptions } from '../../src/config/options.js';
import { PipeError } from '../../src/errors.js';
import { create, spec, type S3Source } from '../../src/sources/s3.js';
import type { ArtifactState, ArtifactStatus } from '../../src/state/store.js';
import type { Artifact, ListContext } from '../../src/types.js';
import { AWS_TEST_ENV, cloudTrailKey, S3Proxy, startS3, type S3Server } from '../helpers/s3.js';

let s3: S3Server;
let proxy: S3Proxy;
const BUCKET = 'src';
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

beforeAll(async () => {
  Object.assign(process.env, AWS_TEST_ENV, { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  s3 = await startS3();
  proxy = await S3Proxy.start(s3.url);
  await s3.createBucket(BUCKET);
});
afterAll(async () => {
  await proxy?.close();
  await s3?.close();
});
beforeEach(() => proxy.reset());

function source(over: Record<string, unknown> = {}): S3Source {
  const { options, problems } = validateComponentOptions(spec, { bucket: BUCKET, endpoint: proxy.url, forcePathStyle: true, settle: '0s', ...over }, 'source');
  expect(problems).toEqual([]);
  return create(options, { pipeline: 't', store: undefined as never, log: quiet, baseDir: '.' }) as S3Source;
}

interface FakeState {
  states: Map<string, ArtifactStatus>;
  positions: Map<string, unknown>;
}

function listContext(over: Partial<ListContext> = {}, state: FakeState = { states: new Map(), positions: new Map() }): ListContext & FakeState {
  return {
    signal: new AbortController().signal, scope: {}, once: true, log: quiet, ...state,
    position: async (s) => state.positions.get(s),
    savePosition: async (s, v) => { state.positions.set(s, v); },
    artifactState: async (id) => (state.states.has(id) ? ({ identity: id, status: state.states.get(id) } as ArtifactState) : undefined),
    recordSkipped: async (ref) => { state.states.set(ref.identity, 'skipped'); },
    ...over,
  };
}

async function listAll(src: S3Source, ctx: ListContext): Promise<Artifact[]> {
  const out: Artifact[] = [];
  for await (const a of src.list(ctx)) out.push(a);
  return out;
}

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const signal = (): AbortSignal => new AbortController().signal;

async function rejection(p: Promise<unknown>): Promise<PipeError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(PipeError);
  return err as PipeError;
}

describe('s3 source', () => {
  it('lists keys with identity, size and time, and reads them byte for byte: spaces, =, unicode, zero bytes', async () => {
    const objects: Record<string, Buffer> = {
      't1/a key with spaces=1 ü.json': Buffer.from('{"a":1}\n'),
      't1/dir/sub=x/日本 語+%.log': Buffer.from('line one\nline two\n'),
      't1/zero.txt': Buffer.alloc(0),
      't1/dir/': Buffer.alloc(0),
      't1/skip.tmp': Buffer.from('no'),
    };
    const etags: Record<string, string> = {};
    for (const [k, v] of Object.entries(objects)) etags[k] = await s3.put(BUCKET, k, v);
    const found = await listAll(source({ prefix: 't1/', exclude: ['**/*.tmp'] }), listContext());
    const keys = ['t1/a key with spaces=1 ü.json', 't1/dir/sub=x/日本 語+%.log', 't1/zero.txt'];
    expect(found.map((a) => a.uri)).toEqual(keys.map((k) => `s3://${BUCKET}/${k}`));
    for (const [i, a] of found.entries()) {
      const k = keys[i]!;
      expect(a.identity).toBe(`s3:${BUCKET}/${k}:${etags[k]}:${objects[k]!.length}`);
      expect(a.size).toBe(objects[k]!.length);
      expect(Math.abs(a.mtime!.getTime() - Date.now())).toBeLessThan(60_000);
      expect((await readAll(await a.open({ signal: signal() }))).equals(objects[k]!)).toBe(true);
    }
    const gets = proxy.requests.filter((r) => r.op === 'get');
    expect(gets.map((r) => r.key)).toEqual(keys);
    expect(gets.every((r) => r.headers.range === undefined && r.headers['if-match'] === `"${etags[r.key]}"`)).toBe(true);
  });

  it('resumes a body cut mid-way or stalled past the timeout with ranged GETs pinned to its ETag', async () => {
    const key = 't2/big.bin';
    const data = randomBytes(400_000);
    const etag = await s3.put(BUCKET, key, data);
    const faults = [{ resetAfter: 60_000 }, { stallAfter: 50_000, ms: 1_500 }, { resetAfter: 1 }, { trickle: 16_384, delayMs: 2 }];
    let n = 0;
    proxy.fault = (r) => (r.op === 'get' && r.key === key ? faults[n++] : undefined);
    const [a] = await listAll(source({ prefix: 't2/', timeout: '400ms' }), listContext());
    const got = await readAll(await a!.open({ signal: signal() }));
    expect(got.length).toBe(data.length);
    expect(sha(got)).toBe(sha(data));
    const gets = proxy.requests.filter((r) => r.op === 'get');
    expect(gets).toHaveLength(4);
    expect(gets.every((r) => r.headers['if-match'] === `"${etag}"`)).toBe(true);
    const starts = gets.map((r) => Number(/^bytes=(\d+)-$/.exec(r.headers.range ?? 'bytes=0-')?.[1]));
    // Reset after 60,000 bytes; stalled 50,000 bytes later; reset after 1 byte (which may not get through).
    expect(starts.slice(0, 3)).toEqual([0, 60_000, 110_000]);
    expect([110_000, 110_001]).toContain(starts[3]);
  });

  it('reports an object deleted or replaced before reading as not found, and one replaced mid-read with its byte', async () => {
    await s3.put(BUCKET, 't3/deleted.json', '{}');
    await s3.put(BUCKET, 't3/replaced.json', '{"v":1}');
    await s3.put(BUCKET, 't3/changing.json', Buffer.alloc(50_000, 0x20));
    const [changing, deleted, replaced] = await listAll(source({ prefix: 't3/' }), listContext());
    await s3.delete(BUCKET, 't3/deleted.json');
    await s3.put(BUCKET, 't3/replaced.json', '{"v":2}');
    const gone = await rejection(deleted!.open({ signal: signal() }));
    expect(gone.code).toBe('PIPE_ARTIFACT_NOT_FOUND');
    expect(gone.message).toMatch(/^s3:\/\/src\/t3\/deleted\.json: NoSuchKey \(HTTP 404\).*deleted since it was listed/);
    const changed = await rejection(replaced!.open({ signal: signal() }));
    expect(changed.code).toBe('PIPE_ARTIFACT_NOT_FOUND');
    expect(changed.message).toMatch(/PreconditionFailed \(HTTP 412\).*ETag changed/);

    let n = 0;
    proxy.fault = (r) => (r.key === 't3/changing.json' && n++ === 0 ? { resetAfter: 20_000 } : undefined);
    proxy.before = async (r) => {
      if (r.key === 't3/changing.json' && r.headers.range) await s3.put(BUCKET, 't3/changing.json', Buffer.alloc(50_000, 0x21));
    };
    const err = await rejection(readAll(await changing!.open({ signal: signal() })));
    expect(err.code).toBe('PIPE_ARTIFACT_NOT_FOUND');
    expect(err.position).toEqual({ byte: 20_000 });
  });

  it('refuses a resume that the server answers with the whole object instead of the range', async () => {
    await s3.put(BUCKET, 't7/norange.bin', randomBytes(30_000));
    const [a] = await listAll(source({ prefix: 't7/' }), listContext());
    let n = 0;
    proxy.fault = (r) => (r.op === 'get' && n++ === 0 ? { resetAfter: 10_000 } : undefined);
    proxy.before = (r) => {
      delete r.headers.range;
    };
    const err = await rejection(readAll(await a!.open({ signal: signal() })));
    expect(err.code).toBe('PIPE_ARTIFACT_UNREADABLE');
    expect(err.message).toBe('s3://src/t7/norange.bin: resuming at byte 10000: the server answered without the range asked for (Content-Range: none)');
    expect(err.position).toEqual({ byte: 10_000 });
  });

  it('retries throttling and 5xx with backoff, then fails the object with the code and attempts', async () => {
    await s3.put(BUCKET, 't4/slow.json', '{"ok":true}');
    await s3.put(BUCKET, 't4/broken.json', '{}');
    await s3.put(BUCKET, 't4/throttled.json', '{}');
    const counts = new Map<string, number>();
    proxy.fault = (r) => {
      if (r.op !== 'get') return undefined;
      const n = (counts.get(r.key) ?? 0) + 1;
      counts.set(r.key, n);
      if (r.key === 't4/slow.json' && n <= 2) return { status: 503, code: 'SlowDown' };
      if (r.key === 't4/broken.json') return { status: 500, code: 'InternalError' };
      if (r.key === 't4/throttled.json') return { status: 503, code: 'SlowDown' };
      return undefined;
    };
    const [broken, slow, throttled] = await listAll(source({ prefix: 't4/', maxAttempts: 3 }), listContext());
    const [body, t, b] = await Promise.all([
      slow!.open({ signal: signal() }).then(readAll),
      rejection(throttled!.open({ signal: signal() })),
      rejection(broken!.open({ signal: signal() })),
    ]);
    expect(body.toString()).toBe('{"ok":true}');
    expect(counts.get('t4/slow.json')).toBe(3);
    expect(t.code).toBe('PIPE_SOURCE_THROTTLED');
    expect(t.message).toBe('s3://src/t4/throttled.json: SlowDown (HTTP 503): injected by the test proxy, after 3 attempts');
    expect(counts.get('t4/throttled.json')).toBe(3);
    expect(b.code).toBe('PIPE_ARTIFACT_UNREADABLE');
    expect(b.message).toMatch(/^s3:\/\/src\/t4\/broken\.json: InternalError \(HTTP 500\).*after 3 attempts$/);
  });

  it('names the bucket and key in AccessDenied and NoSuchBucket errors', async () => {
    await s3.put(BUCKET, 't5/secret.json', '{}');
    const [secret] = await listAll(source({ prefix: 't5/' }), listContext());
    proxy.fault = (r) => (r.op === 'get' || r.query.get('prefix') === 'denied/' ? { status: 403, code: 'AccessDenied' } : undefined);
    const denied = await rejection(secret!.open({ signal: signal() }));
    expect(denied.code).toBe('PIPE_ARTIFACT_UNREADABLE');
    expect(denied.message).toMatch(/^s3:\/\/src\/t5\/secret\.json: AccessDenied \(HTTP 403\).*s3:GetObject/);
    const list = await rejection(listAll(source({ prefix: 'denied/' }), listContext()));
    expect(list.code).toBe('PIPE_SOURCE_FAILED');
    expect(list.message).toMatch(/^listing s3:\/\/src\/denied\/: AccessDenied \(HTTP 403\).*s3:ListBucket on arn:aws:s3:::src/);
    const missing = await rejection(listAll(source({ bucket: 'no-such-bucket' }), listContext()));
    expect(missing.message).toBe('listing s3://no-such-bucket/: bucket no-such-bucket does not exist (NoSuchBucket)');
  });

  it('keeps only objects modified inside --from/--to without a layout, and never moves the mark past the others', async () => {
    await s3.put(BUCKET, 't8/a.json', '{}');
    await s3.put(BUCKET, 't8/b.json', '{}');
    const src = source({ prefix: 't8/' });
    const state: FakeState = { states: new Map(), positions: new Map() };
    const now = await listAll(src, listContext({ scope: { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 3_600_000) } }, state));
    expect(now.map((a) => a.uri)).toEqual(['s3://src/t8/a.json', 's3://src/t8/b.json']);
    for (const a of now) state.states.set(a.identity, 'done');
    // Both done, but this listing leaves them out: it has no right to move the mark past them.
    expect(await listAll(src, listContext({ scope: { from: new Date(Date.now() + 3_600_000) } }, state))).toEqual([]);
    expect(state.positions.size).toBe(0);
    await listAll(src, listContext({}, state));
    expect([...state.positions.values()]).toEqual([{ after: 't8/b.json' }]);
  });

  it('uses AWS_ENDPOINT_URL_S3 when no endpoint is configured', async () => {
    await s3.put(BUCKET, 't6/env.json', '{}');
    const before = process.env.AWS_ENDPOINT_URL_S3;
    process.env.AWS_ENDPOINT_URL_S3 = proxy.url;
    try {
      const found = await listAll(source({ prefix: 't6/', endpoint: null }), listContext());
      expect(found.map((a) => a.uri)).toEqual(['s3://src/t6/env.json']);
      expect(proxy.count('list', 't6/')).toBe(1);
    } finally {
      if (before === undefined) delete process.env.AWS_ENDPOINT_URL_S3;
      else process.env.AWS_ENDPOINT_URL_S3 = before;
    }
  });
});

describe('s3 source with a layout', () => {
  const bucket = 'trails';
  const A = '111111111111';
  const B = '222222222222';
  const keys = [
    cloudTrailKey(A, 'eu-west-1', 1, 0), cloudTrailKey(A, 'eu-west-1', 2, 0),
    cloudTrailKey(A, 'us-east-1', 1, 0), cloudTrailKey(A, 'us-east-1', 2, 0), cloudTrailKey(A, 'us-east-1', 3, 0),
    cloudTrailKey(B, 'us-east-1', 2, 0).replace('AWSLogs/', 'AWSLogs/o-exampleorg1/'),
  ];
  const noise = [cloudTrailKey(A, 'us-east-1', 2, 1, 'CloudTrail-Digest'), cloudTrailKey(A, 'us-east-1', 2, 0, 'vpcflowlogs')];

  beforeAll(async () => {
    await s3.createBucket(bucket);
    for (const k of [...keys, ...noise]) await s3.put(bucket, k, `{"Records":[]} ${k}`);
  });

  it('discovers organizations, accounts and regions with delimiter listings; lists each region from its mark', async () => {
    const state: FakeState = { states: new Map(), positions: new Map() };
    const src = source({ bucket, prefix: 'AWSLogs/', layout: 'cloudtrail' });
    const first = await listAll(src, listContext({}, state));
    expect(first.map((a) => a.uri.slice(`s3://${bucket}/`.length))).toEqual(keys);
    const delimited = proxy.requests.filter((r) => r.op === 'list' && r.query.get('delimiter') === '/').map((r) => r.query.get('prefix'));
    expect(delimited).toEqual(['AWSLogs/', `AWSLogs/${A}/CloudTrail/`, 'AWSLogs/o-exampleorg1/', `AWSLogs/o-exampleorg1/${B}/CloudTrail/`]);
    const leaves = proxy.requests.filter((r) => r.op === 'list' && !r.query.get('delimiter')).map((r) => r.query.get('prefix'));
    expect(leaves).toEqual([`AWSLogs/${A}/CloudTrail/eu-west-1/`, `AWSLogs/${A}/CloudTrail/us-east-1/`, `AWSLogs/o-exampleorg1/${B}/CloudTrail/us-east-1/`]);
    expect(state.positions.size).toBe(0);

    // Collected: every region's mark moves to its last key, and the next pass lists after it.
    for (const a of first) state.states.set(a.identity, 'done');
    proxy.reset();
    expect(await listAll(src, listContext({}, state))).toHaveLength(keys.length);
    expect([...state.positions.entries()]).toEqual([
      [`s3://${bucket}/AWSLogs/${A}/CloudTrail/eu-west-1/`, { after: keys[1] }],
      [`s3://${bucket}/AWSLogs/${A}/CloudTrail/us-east-1/`, { after: keys[4] }],
      [`s3://${bucket}/AWSLogs/o-exampleorg1/${B}/CloudTrail/us-east-1/`, { after: keys[5] }],
    ]);
    proxy.reset();
    expect(await listAll(src, listContext({}, state))).toEqual([]);
    const startAfters = proxy.requests.filter((r) => r.op === 'list' && !r.query.get('delimiter')).map((r) => r.query.get('start-after'));
    expect(startAfters).toEqual([keys[1], keys[4], keys[5]]);
  });

  it('narrows to --prefix and to the days of --from/--to, listing from the first day of the window', async () => {
    const src = source({ bucket, prefix: 'AWSLogs/', layout: 'cloudtrail' });
    const scope = { prefix: `AWSLogs/${A}/`, from: new Date('2024-03-02T00:00:00Z'), to: new Date('2024-03-03T00:00:00Z') };
    const found = await listAll(src, listContext({ scope }));
    expect(found.map((a) => a.uri.slice(`s3://${bucket}/`.length))).toEqual([keys[1], keys[3]]);
    const leaves = proxy.requests.filter((r) => r.op === 'list' && !r.query.get('delimiter'));
    expect(leaves.map((r) => [r.query.get('prefix'), r.query.get('start-after')])).toEqual([
      [`AWSLogs/${A}/CloudTrail/eu-west-1/`, `AWSLogs/${A}/CloudTrail/eu-west-1/2024/03/02`],
      [`AWSLogs/${A}/CloudTrail/us-east-1/`, `AWSLogs/${A}/CloudTrail/us-east-1/2024/03/02`],
    ]);
    // A window opening mid-day: the day is listed from its start, its earlier deliveries left out.
    const midday = await listAll(src, listContext({ scope: { prefix: `AWSLogs/${A}/CloudTrail/us-east-1/`, from: new Date('2024-03-02T12:00:00Z') } }));
    expect(midday.map((a) => a.uri.slice(`s3://${bucket}/`.length))).toEqual([keys[4]]);
    const outside = await rejection(listAll(source({ bucket, prefix: `AWSLogs/${A}/`, layout: 'cloudtrail' }), listContext({ scope: { prefix: `AWSLogs/${B}/` } })));
    expect(outside.code).toBe('PIPE_USAGE');
  });
});

describe('s3 source with Hive-compatible VPC Flow Logs prefixes', () => {
  const bucket = 'flows-hive';
  const A = '111111111111';
  // AWS's Hive-compatible layout, daily and per-hour partitions (both are delivery options).
  const hiveKey = (region: string, day: number, hour?: number): string => {
    const d = String(day).padStart(2, '0');
    const h = String(hour ?? 0).padStart(2, '0');
    return `AWSLogs/aws-account-id=${A}/aws-service=vpcflowlogs/aws-region=${region}/year=2024/month=03/day=${d}/`
      + `${hour === undefined ? '' : `hour=${h}/`}${A}_vpcflowlogs_${region}_fl-0123456789abcdef0_202403${d}T${h}05Z_a1b2c3d4.log.gz`;
  };
  const keys = [hiveKey('eu-west-1', 1), hiveKey('eu-west-1', 2), hiveKey('us-east-1', 1, 23), hiveKey('us-east-1', 2, 0), hiveKey('us-east-1', 2, 13), hiveKey('us-east-1', 3, 0)];

  beforeAll(async () => {
    await s3.createBucket(bucket);
    for (const k of keys) await s3.put(bucket, k, `version\n${k}`);
  });

  it('discovers aws-account-id=, aws-service= and aws-region= directories, and lists only the days of --from/--to', async () => {
    const src = source({ bucket, prefix: 'AWSLogs/', layout: 'vpcflow' });
    const all = await listAll(src, listContext({}));
    expect(all.map((a) => a.uri.slice(`s3://${bucket}/`.length))).toEqual(keys);
    const delimited = proxy.requests.filter((r) => r.op === 'list' && r.query.get('delimiter') === '/').map((r) => r.query.get('prefix'));
    expect(delimited).toEqual(['AWSLogs/', `AWSLogs/aws-account-id=${A}/aws-service=vpcflowlogs/`]);
    proxy.reset();
    const scope = { from: new Date('2024-03-02T12:00:00Z'), to: new Date('2024-03-03T00:00:00Z') };
    const found = await listAll(src, listContext({ scope }));
    expect(found.map((a) => a.uri.slice(`s3://${bucket}/`.length))).toEqual([keys[4]]);
    const leaves = proxy.requests.filter((r) => r.op === 'list' && !r.query.get('delimiter'));
    const region = (r: string): string => `AWSLogs/aws-account-id=${A}/aws-service=vpcflowlogs/aws-region=${r}/`;
    expect(leaves.map((r) => [r.query.get('prefix'), r.query.get('start-after')])).toEqual([
      [region('eu-west-1'), `${region('eu-west-1')}year=2024/month=03/day=02`],
      [region('us-east-1'), `${region('us-east-1')}year=2024/month=03/day=02`],
    ]);
  });
});

describe('s3 source with poll', () => {
  it('keeps listing until stopped, and never hands out an object it is still collecting', async () => {
    await s3.put(BUCKET, 'poll/a.json', '{}');
    const ac = new AbortController();
    const ctx = listContext({ signal: ac.signal, once: false });
    const src = source({ prefix: 'poll/', poll: '1s' });
    const seen: string[] = [];
    const started = Date.now();
    for await (const a of src.list(ctx)) {
      seen.push(a.uri);
      if (seen.length === 1) {
        // a.json stays in flight; b.json arrives.
        ctx.states.set(a.identity, 'in_progress');
        await s3.put(BUCKET, 'poll/b.json', '{}');
      } else {
        for (const id of [a.identity, ...[...ctx.states.keys()]]) ctx.states.set(id, 'done');
        setTimeout(() => ac.abort(), 1_500);
      }
    }
    expect(seen).toEqual(['s3://src/poll/a.json', 's3://src/poll/b.json']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(ctx.positions.get('s3://src/poll/')).toEqual({ after: 'poll/b.json' });
    // Three passes: the first, the one that found b.json, one after the mark that found nothing.
    const lists = proxy.requests.filter((r) => r.op === 'list').map((r) => r.query.get('start-after'));
    expect(lists).toEqual([null, null, 'poll/b.json']);
  });

  it('reports a listing that fails after the first pass and tries again at the next poll', async () => {
    await s3.put(BUCKET, 'poll2/a.json', '{}');
    const warnings: string[] = [];
    const ac = new AbortController();
    const ctx = listContext({ signal: ac.signal, once: false, log: { ...quiet, warn: (m: string) => warnings.push(m) } });
    let lists = 0;
    proxy.fault = (r) => (r.op === 'list' && ++lists === 2 ? { status: 503, code: 'SlowDown' } : undefined);
    const seen: string[] = [];
    for await (const a of source({ prefix: 'poll2/', poll: '1s', maxAttempts: 1 }).list(ctx)) {
      seen.push(a.uri);
      ctx.states.set(a.identity, 'done');
      if (seen.length === 1) await s3.put(BUCKET, 'poll2/b.json', '{}');
      else ac.abort();
    }
    expect(seen).toEqual(['s3://src/poll2/a.json', 's3://src/poll2/b.json']);
    expect(warnings).toEqual(['listing s3://src/poll2/: SlowDown (HTTP 503): injected by the test proxy; listing again in 1s']);
    expect(lists).toBe(3);
  });
});
