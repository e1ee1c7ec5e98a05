/**
 * lines loader over VPC-flow-shaped text (about 25 MB, 64 KiB chunks), against a bare loop that
 * decodes each chunk and splits it on '\n' (carrying the partial last line) over the same chunks.
 * `runSplit2` measures split2 the same way, for the record of why lines.ts does not use it.
 */
import split2 from 'split2';
import { Readable } from 'node:stream';
import { linesStage } from '../../src/loaders/lines.js';
import { prng, result, runIfMain, type BenchResult } from '../mappers/harness.js';
import { chunked, countRecords, timeBestAsync } from './timing.js';

const LINES = 200_000;

export function generateLog(lines = LINES, seed = 5): Buffer {
  const random = prng(seed);
  const ip = () => `10.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}`;
  const out: string[] = ['version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status'];
  for (let i = 1; i < lines; i++) {
    const start = 1_700_000_000 + i;
    out.push(`2 123456789010 eni-${Math.floor(random() * 1e12).toString(16)} ${ip()} ${ip()} ${Math.floor(random() * 65536)} 443 6 ${1 + Math.floor(random() * 50)} ${Math.floor(random() * 1e6)} ${start} ${start + 60} ${random() < 0.9 ? 'ACCEPT' : 'REJECT'} OK`);
  }
  return Buffer.from(out.join('\n') + '\n');
}

async function baselineSplit(data: Buffer): Promise<number> {
  let n = 0;
  let carry = '';
  for await (const chunk of chunked(data)) {
    const parts = (carry + chunk.toString()).split('\n');
    carry = parts.pop()!;
    for (const p of parts) if (p !== undefined) n++;
  }
  return carry ? n + 1 : n;
}

async function measure(name: string, loader: (data: Buffer) => Promise<number>): Promise<BenchResult> {
  const data = generateLog();
  const baseline = await timeBestAsync(() => baselineSplit(data));
  const measured = await timeBestAsync(() => loader(data));
  if (measured.count !== baseline.count) throw new Error(`${name}: ${measured.count} lines, baseline ${baseline.count}`);
  return result(name, measured.count, data.length, measured.seconds, baseline.seconds);
}

export function run(): Promise<BenchResult> {
  return measure('loaders/lines', (data) => countRecords(linesStage({ maxLineBytes: 1024 * 1024, encoding: 'utf8' }), chunked(data)));
}

export function runSplit2(): Promise<BenchResult> {
  return measure('loaders/lines (split2)', async (data) => {
    let n = 0;
    for await (const _ of Readable.from(chunked(data)).pipe(split2())) n++;
    return n;
  });
}

runIfMain(import.meta.url, run);
