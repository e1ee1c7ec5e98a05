// Builds fixtures/demo/: the public samples laid out as AWS delivers them to S3
// (AWSLogs/<account>/<service>/<region>/YYYY/MM/DD/…, gzip), for the README demo and the tests.
// Deterministic: gzip headers carry no time, so re-running it changes no byte.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

const pub = 'fixtures/public';
const out = 'fixtures/demo';
const put = (path, text) => {
  const p = join(out, path);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, gzipSync(Buffer.from(text), { level: 9 }));
};

const ct = 'AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01';
const log = readFileSync(join(pub, 'opentelemetry-collector-contrib/cloudtrail_log.json'), 'utf8');
put(`cloudtrail/${ct}/123456789012_CloudTrail_us-east-1_20240301T0005Z_a1b2c3d4e5f6.json.gz`, log);
const records = JSON.parse(log).Records;
put(`cloudtrail/${ct}/123456789012_CloudTrail_us-east-1_20240301T0010Z_b2c3d4e5f6a1.json.gz`,
  JSON.stringify({ Records: records.slice(0, 3) }));
put(`cloudtrail/${ct}/123456789012_CloudTrail_us-east-1_20240301T0015Z_c3d4e5f6a1b2.json.gz`,
  readFileSync(join(pub, 'opentelemetry-collector-contrib/cloudtrail_log_empty.json'), 'utf8'));
put(`cloudtrail/AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/03/01/123456789012_CloudTrail-Digest_us-east-1_demo_us-east-1_20240301T010000Z.json.gz`,
  readFileSync(join(pub, 'opentelemetry-collector-contrib/cloudtrail_digest.json'), 'utf8'));

const vpc = 'AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/03/01';
const docs = join(pub, 'aws-docs-vpc-user-guide');
for (const [i, name] of ['accepted-rejected', 'nodata-skipdata', 'tcp-flags-v3', 'traffic-path-v5', 'transit-gateway-v3', 'ipv6'].entries()) {
  put(`vpcflow/${vpc}/123456789012_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20240301T00${String(i * 5).padStart(2, '0')}Z_${name}.log.gz`,
    readFileSync(join(docs, `aws-docs-vpcflow-${name}.log`), 'utf8'));
}
