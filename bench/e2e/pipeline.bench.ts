/**
 * End-to-end scenarios of issue 7, each a real `pipe run` against a bare one-core script over the
 * same files in the same process (the ratio is pipe's time over the script's).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { result, type BenchResult } from '../mappers/harness.js';
import { generateEvents } from '../mappers/cloudtrail.bench.js';
import { bareCloudTrail, bareVpcFlow } from './bare.js';
import { pipelineFile, runPipe } from './cli.js';
import { cloudTrailDataset, vpcFlowDataset } from './data.js';

export const WORK = process.env.PIPE_BENCH_DIR ?? join(tmpdir(), 'pipe-bench');

export interface E2eResult extends BenchResult {
  peakRssMb: number;
}

async function scenario(name: string, dir: string, mapper: string, bare: (d: string, o: string) => { rows: number; bytes: number }): Promise<E2eResult> {
  const t0 = process.hrtime.bigint();
  const { rows, bytes } = bare(dir, join(WORK, 'bare.jsonl'));
  const baseline = { seconds: Number(process.hrtime.bigint() - t0) / 1e9, count: rows };
  const file = pipelineFile(WORK, name, `{ type: files, path: ${dir}, include: ["**/*.gz"] }`, `[${mapper}]`);
  const run = await runPipe(['run', file, '--no-progress']);
  if (run.code !== 0) throw new Error(`${name}: pipe exited ${run.code}: ${run.stderr}`);
  return { ...result(name, baseline.count, bytes, run.seconds, baseline.seconds), peakRssMb: run.peakRssMb };
}

export async function cloudTrail(): Promise<E2eResult> {
  const ds = cloudTrailDataset(WORK);
  return scenario('e2e cloudtrail files→jsonl', ds.dir, 'cloudtrail', bareCloudTrail);
}

export async function vpcFlow(): Promise<E2eResult> {
  const ds = vpcFlowDataset(WORK, 20, 25_000);
  return scenario('e2e vpcflow files→jsonl', ds.dir, 'vpcflow', bareVpcFlow);
}

/** One CloudTrail document of about 1 GB uncompressed: peak RSS must stay bounded. */
export async function hugeDocument(): Promise<E2eResult> {
  const dir = join(WORK, 'huge');
  const path = join(dir, 'huge.json.gz');
  mkdirSync(dir, { recursive: true });
  const events = generateEvents(2000, 3);
  const perEvent = events.reduce((n, e) => n + e.length, 0) / events.length;
  const count = Math.ceil(1e9 / perEvent);
  const gz = createGzip({ level: 1 });
  const out = createWriteStream(path);
  gz.pipe(out);
  gz.write('{"Records":[');
  for (let i = 0; i < count; i++) {
    const e = events[i % events.length]!.replace(/"eventID":"[^"]*"/, `"eventID":"huge-${i}"`);
    if (!gz.write(i ? `,${e}` : e)) await once(gz, 'drain');
  }
  gz.end(']}');
  await once(out, 'close');
  const file = pipelineFile(WORK, 'huge-run', `{ type: files, path: ${path} }`, '[cloudtrail]');
  const run = await runPipe(['run', file, '--no-progress']);
  if (run.code !== 0) throw new Error(`huge: pipe exited ${run.code}: ${run.stderr}`);
  return { ...result('1 GB document (RSS bound 200 MB)', count, count * perEvent, run.seconds, run.seconds), peakRssMb: run.peakRssMb };
}

/** 10,000 small CloudTrail files: peak RSS must stay bounded. */
export async function manySmall(): Promise<E2eResult> {
  const ds = cloudTrailDataset(WORK, 10_000, 3);
  const file = pipelineFile(WORK, 'many-run', `{ type: files, path: ${ds.dir}, include: ["**/*.gz"] }`, '[cloudtrail]');
  const run = await runPipe(['run', file, '--no-progress']);
  if (run.code !== 0) throw new Error(`many: pipe exited ${run.code}: ${run.stderr}`);
  return { ...result('10,000 artifacts (RSS bound 200 MB)', ds.rows, 0, run.seconds, run.seconds), peakRssMb: run.peakRssMb };
}

/** `pipe --help` (goal under 300 ms) and a one-file pipeline end to end (goal under 600 ms). */
export async function startup(): Promise<E2eResult[]> {
  let best = Infinity;
  for (let i = 0; i < 5; i++) best = Math.min(best, (await runPipe(['--help'])).seconds);
  const dir = join(WORK, 'one');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'one.json'), JSON.stringify({ Records: generateEvents(10, 1).map((e) => JSON.parse(e) as unknown) }));
  let one = Infinity;
  for (let i = 0; i < 5; i++) {
    const file = pipelineFile(WORK, 'one-run', `{ type: files, path: ${dir} }`, '[cloudtrail]');
    one = Math.min(one, (await runPipe(['run', file, '--no-progress'])).seconds);
  }
  return [
    { ...result('pipe --help (goal 0.3 s)', 0, 0, best, 0.3), peakRssMb: 0 },
    { ...result('one-file pipeline (goal 0.6 s)', 10, 0, one, 0.6), peakRssMb: 0 },
  ];
}
