/**
 * The baselines the issue measures against, as plain one-core scripts with no streaming and no
 * state: gunzip + JSON.parse + JSON.stringify per record (CloudTrail), gunzip + split + stringify
 * per line (VPC Flow), writing JSON lines to a file.
 */
import { openSync, readdirSync, readFileSync, statSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (name.endsWith('.gz')) out.push(p);
  }
  return out.sort();
}

export function bareCloudTrail(dir: string, outFile: string): { rows: number; bytes: number } {
  const fd = openSync(outFile, 'w');
  let rows = 0;
  let bytes = 0;
  for (const f of files(dir)) {
    const text = gunzipSync(readFileSync(f)).toString('utf8');
    bytes += text.length;
    const doc = JSON.parse(text) as { Records: unknown[] };
    let out = '';
    for (const r of doc.Records) {
      out += JSON.stringify(r) + '\n';
      rows++;
    }
    writeSync(fd, out);
  }
  closeSync(fd);
  return { rows, bytes };
}

export function bareVpcFlow(dir: string, outFile: string): { rows: number; bytes: number } {
  const fd = openSync(outFile, 'w');
  let rows = 0;
  let bytes = 0;
  for (const f of files(dir)) {
    const text = gunzipSync(readFileSync(f)).toString('utf8');
    bytes += text.length;
    const lines = text.split('\n');
    const fields = lines[0]!.split(' ');
    let out = '';
    for (let i = 1; i < lines.length; i++) {
      if (!lines[i]) continue;
      const values = lines[i]!.split(' ');
      const row: Record<string, string> = {};
      for (let k = 0; k < fields.length; k++) row[fields[k]!] = values[k]!;
      out += JSON.stringify(row) + '\n';
      rows++;
    }
    writeSync(fd, out);
  }
  closeSync(fd);
  return { rows, bytes };
}
