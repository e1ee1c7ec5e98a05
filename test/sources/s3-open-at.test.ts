/**
 * The s3 source opening an object mid-way (`OpenOptions.start`, a run resuming past committed
 * records): a ranged GET pinned to the ETag, a body broken after it resumed from the right byte, and
 * a start at the object's end answered without a request.
 */
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { validateComponentOptions } from '../../src/config/options.js';
import { create, spec, type S3Source } from '../../src/sources/s3.js';
import type { Artifact, ListContext } from '../../src/types.js';
import { AWS_TEST_ENV, S3Proxy, startS3, type S3Server } from '../helpers/s3.js';

let s3: S3Server;
let proxy: S3Proxy;
const BUCKET = 'open-at';
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

async function artifact(key: string): Promise<Artifact> {
  const { options } = validateComponentOptions(spec, { bucket: BUCKET, endpoint: proxy.url, forcePathStyle: true, settle: '0s', timeout: '500ms' }, 'source');
  const src = create(options, { pipeline: 't', store: undefined as never, log: quiet, baseDir: '.' }) as S3Source;
  const ctx = {
    signal: new AbortController().signal, scope: {}, once: true, log: quiet,
    position: async () => undefined, savePosition: async () => {}, artifactState: async () => undefined, recordSkipped: async () => {},
  } as ListContext;
  for await (const a of src.list(ctx)) if (a.uri.endsWith(key)) return a;
  throw new Error(`${key} not listed`);
}

async function read(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('s3 source: opening at a byte', () => {
  it('asks for the rest with a ranged GET pinned to the ETag, and resumes a broken body from the right byte', async () => {
    const body = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`).join(''));
    const etag = await s3.put(BUCKET, 'a.log', body);
    const a = await artifact('a.log');
    expect(a.seekable).toBe(true);
    let gets = 0;
    proxy.fault = (r) => (r.op === 'get' && gets++ === 0 ? { resetAfter: 10_000 } : undefined);
    const start = 50_000;
    expect(await read(await a.open({ signal: new AbortController().signal, start }))).toEqual(body.subarray(start));
    const ranges = proxy.requests.filter((r) => r.op === 'get').map((r) => [r.headers.range, r.headers['if-match']]);
    expect(ranges).toEqual([[`bytes=${start}-`, `"${etag}"`], [`bytes=${start + 10_000}-`, `"${etag}"`]]);
  });

  it('a start at the end reads nothing, without a request', async () => {
    const body = Buffer.from('one\ntwo\n');
    await s3.put(BUCKET, 'b.log', body);
    const a = await artifact('b.log');
    proxy.reset();
    expect(await read(await a.open({ signal: new AbortController().signal, start: body.length }))).toEqual(Buffer.alloc(0));
    expect(proxy.count('get')).toBe(0);
  });
});
