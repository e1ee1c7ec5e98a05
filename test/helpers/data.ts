/** Deterministic generated data for the engine and CLI tests. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** A small seeded PRNG (mulberry32), so a failing test can be replayed; the benchmarks' is the same. */
export { prng } from '../../bench/mappers/harness.js';

export function cloudTrailEvent(file: number, i: number): Record<string, unknown> {
  const t = new Date(Date.UTC(2024, 2, 1, 0, 0, 0) + (file * 1000 + i) * 1000).toISOString().replace('.000Z', 'Z');
  return {
    eventVersion: '1.09',
    userIdentity: { type: 'IAMUser', principalId: 'AIDAEXAMPLE', arn: 'arn:aws:iam::123456789012:user/alice', accountId: '123456789012', userName: 'alice' },
    eventTime: t,
    eventSource: i % 3 === 0 ? 'kms.amazonaws.com' : 's3.amazonaws.com',
    eventName: i % 2 ? 'GetObject' : 'Decrypt',
    awsRegion: 'us-east-1',
    sourceIPAddress: `10.0.${file % 256}.${i % 256}`,
    userAgent: 'aws-cli/2.15.0',
    requestParameters: { bucketName: 'demo', key: `k/${file}/${i}` },
    responseElements: null,
    requestID: `req-${file}-${i}`,
    eventID: `ev-${String(file).padStart(4, '0')}-${String(i).padStart(5, '0')}`,
    readOnly: true,
    eventType: 'AwsApiCall',
    recipientAccountId: '123456789012',
  };
}

/** Writes `files` gzip CloudTrail deliveries of `perFile` events each; returns every eventID. */
export function writeCloudTrail(dir: string, files: number, perFile: number): string[] {
  const ids: string[] = [];
  for (let f = 0; f < files; f++) {
    const records = [];
    for (let i = 0; i < perFile; i++) {
      const e = cloudTrailEvent(f, i);
      ids.push(e.eventID as string);
      records.push(e);
    }
    const p = join(dir, `AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/ct_${String(f).padStart(4, '0')}.json.gz`);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, gzipSync(JSON.stringify({ Records: records }), { level: 1 }));
  }
  return ids;
}
