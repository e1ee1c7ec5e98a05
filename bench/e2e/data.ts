/**
 * Deterministic benchmark data on disk: CloudTrail deliveries (gzip JSON documents) and VPC Flow
 * Log deliveries (gzip text with a header line), laid out as AWS writes them. Seeded: the same
 * bytes on every machine, so ratios compare.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { generateEvents } from '../mappers/cloudtrail.bench.js';
import { prng } from '../mappers/harness.js';

export interface Dataset {
  dir: string;
  files: number;
  rows: number;
}

/** `files` CloudTrail files of `perFile` events (≈1 KB each): 60 × 1,900 is the 114k events, 113 MB. */
export function cloudTrailDataset(root: string, files = 60, perFile = 1900): Dataset {
  const dir = join(root, `cloudtrail-${files}x${perFile}`);
  if (!existsSync(join(dir, '.complete'))) {
    const events = generateEvents(files * perFile, 11);
    for (let f = 0; f < files; f++) {
      const day = String(1 + (f % 28)).padStart(2, '0');
      const d = join(dir, `AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/${day}`);
      mkdirSync(d, { recursive: true });
      const body = `{"Records":[${events.slice(f * perFile, (f + 1) * perFile).join(',')}]}`;
      writeFileSync(join(d, `123456789012_CloudTrail_us-east-1_202403${day}T${String(f).padStart(4, '0')}Z_bench.json.gz`), gzipSync(body, { level: 6 }));
    }
    writeFileSync(join(dir, '.complete'), '');
  }
  return { dir, files, rows: files * perFile };
}

const HEADER = 'version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status';

/** VPC Flow Logs in the default v2 format with a header line, `perFile` records per file. */
export function vpcFlowDataset(root: string, files = 40, perFile = 25_000): Dataset {
  const dir = join(root, `vpcflow-${files}x${perFile}`);
  if (!existsSync(join(dir, '.complete'))) {
    const random = prng(13);
    for (let f = 0; f < files; f++) {
      const lines = [HEADER];
      for (let i = 0; i < perFile; i++) {
        const start = 1709251200 + f * 600 + Math.floor(i / 50);
        const ip = () => `10.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}`;
        lines.push(`2 123456789012 eni-${(f * 7919 + i).toString(16).padStart(17, '0')} ${ip()} ${ip()} ${Math.floor(random() * 65536)} ${[22, 80, 443, 3389][i % 4]} 6 ${1 + Math.floor(random() * 50)} ${40 + Math.floor(random() * 90000)} ${start} ${start + 60} ${i % 7 ? 'ACCEPT' : 'REJECT'} OK`);
      }
      const d = join(dir, `AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/03/01`);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, `123456789012_vpcflowlogs_us-east-1_fl-0bench_20240301T${String(f).padStart(4, '0')}Z_hash.log.gz`), gzipSync(lines.join('\n') + '\n', { level: 6 }));
    }
    writeFileSync(join(dir, '.complete'), '');
  }
  return { dir, files, rows: files * perFile };
}
