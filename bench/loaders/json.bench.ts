/**
 * json loader over CloudTrail-shaped log files ({"Records":[…]}, 1,000 events each), against a
 * bare JSON.parse(text).Records loop over the same bytes. `run` measures the path files under
 * maxInMemoryBytes take (JSON.parse plus the nesting scan); `runStreaming` forces the streaming
 * decoder (stream-json) that documents larger than memory take. `runRaw` measures what a worker
 * does per CloudTrail file: records handed on as bytes and written as rows by the cloudtrail
 * mapper, against JSON.parse plus JSON.stringify of every record (the bare script's work).
 */
import { jsonOptions, jsonStage } from '../../src/loaders/json.js';
import { create } from '../../src/mappers/cloudtrail.js';
import { RecordBatch, WRITTEN, type ComponentContext, type LineSink, type RecordContext } from '../../src/types.js';
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

export async function runRaw(): Promise<BenchResult> {
  const files = generateFiles();
  const bytes = files.reduce((n, f) => n + f.length, 0);
  const options = jsonOptions({ path: 'Records' });
  const mapper = create({}, {} as ComponentContext);
  const ref = { identity: 'bench#1', uri: 's3://bench/AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/x.json.gz' };
  let written = 0;
  const sink: LineSink = {
    line: (json) => (written += json.length),
    copy: (_bytes, start, end, tail) => (written += end - start + tail.length),
  };
  const baseline = await timeBestAsync(async () => {
    let n = 0;
    for (const f of files) for (const r of (JSON.parse(f.toString()) as { Records: unknown[] }).Records) n += JSON.stringify(r).length;
    return n;
  });
  const fast = await timeBestAsync(async () => {
    let n = 0;
    for (const f of files) {
      const am = mapper.forArtifact(ref);
      const rc: RecordContext = { artifact: ref, seq: 0, remember() {} };
      const stage = jsonStage(options, undefined, mapper.rawKeys) as (source: AsyncIterable<Buffer>, o: { signal: AbortSignal }) => AsyncIterable<unknown>;
      for await (const item of stage(chunked(f), { signal: new AbortController().signal })) {
        for (const record of (item as RecordBatch).records) {
          if (am.write!(record, rc, sink) !== WRITTEN) throw new Error('json raw bench: a record was not copied');
          n++;
        }
      }
    }
    return n;
  });
  if (fast.count !== files.length * EVENTS_PER_FILE || written === 0) throw new Error(`json raw bench: ${fast.count} rows`);
  return result('loader json + cloudtrail (bytes vs parse+stringify)', fast.count, bytes, fast.seconds, baseline.seconds);
}

runIfMain(import.meta.url, run);
