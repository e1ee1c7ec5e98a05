/**
 * json loader over CloudTrail-shaped log files ({"Records":[…]}, 1,000 events each), against a
 * bare JSON.parse(text).Records loop over the same bytes. `run` measures the path files under
 * maxInMemoryBytes take (JSON.parse plus the nesting scan); `runStreaming` forces the streaming
 * decoder (stream-json) that documents larger than memory take.
 */
import { jsonOptions, jsonStage } from '../../src/loaders/json.js';
import { generateEvents } from '../mappers/cloudtrail.bench.js';
import { result, runIfMain, type BenchResult } from '../mappers/harness.js';
import { chunked, countRecords, timeBestAsync } from './timing.js';

const FILES = 20;
const EVENTS_PER_FILE = 1000;

export function generateFiles(files = FILES, perFile = EVENTS_PER_FILE): Buffer[] {
  const events = generateEvents(files * perFile, 11);
  return Array.from({ length: files }, (_, f) => Buffer.from(`{"Records":[${events.slice(f * perFile, (f + 1) * perFile).join(',')}]}`));
}

async function measure(name: string, maxInMemoryBytes: number): Promise<BenchResult> {
  const files = generateFiles();
  const bytes = files.reduce((n, f) => n + f.length, 0);
  const options = jsonOptions({ path: 'Records', maxInMemoryBytes });

  const baseline = await timeBestAsync(async () => {
    let n = 0;
    for (const f of files) for (const r of (JSON.parse(f.toString()) as { Records: unknown[] }).Records) if (r !== null) n++;
    return n;
  });
  const loader = await timeBestAsync(async () => {
    let n = 0;
    for (const f of files) n += await countRecords(jsonStage(options), chunked(f));
    return n;
  });
  if (loader.count !== baseline.count) throw new Error(`json bench: ${loader.count} records, baseline ${baseline.count}`);
  return result(name, loader.count, bytes, loader.seconds, baseline.seconds);
}

export function run(): Promise<BenchResult> {
  return measure('loaders/json (in memory)', 32 * 1024 * 1024);
}

export function runStreaming(): Promise<BenchResult> {
  return measure('loaders/json (streaming)', 64 * 1024);
}

runIfMain(import.meta.url, run);
