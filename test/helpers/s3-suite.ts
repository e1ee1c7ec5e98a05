/**
 * The S3 set-up most S3 CLI tests share: one fauxqs server and a counting, fault-injecting proxy
 * in front of it for the whole file, the proxy's record and faults reset before each test. Kept
 * apart from s3.ts, which the benchmarks import outside vitest.
 */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { S3Proxy, startS3, type S3Server } from './s3.js';

export function s3Suite(ready: (servers: { s3: S3Server; proxy: S3Proxy }) => void): void {
  let s3: S3Server | undefined;
  let proxy: S3Proxy | undefined;
  beforeAll(async () => {
    s3 = await startS3();
    proxy = await S3Proxy.start(s3.url);
    ready({ s3, proxy });
  });
  afterAll(async () => {
    await proxy?.close();
    await s3?.close();
  });
  beforeEach(() => proxy?.reset());
}
