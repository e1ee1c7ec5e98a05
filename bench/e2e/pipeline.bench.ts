/**
 * End-to-end scenarios of issue 7, each a real `pipe run` against a bare one-core script over the
 * same files (the ratio is pipe's time over the script's). Both run as processes of their own,
 * started the same way: until session 5 the script ran inside this process, where it skipped
 * Node's start and found a heap already grown by the scenarios before it, so its time depended on
 * what had run earlier (0.78–0.90 alone against 0.98–0.99 after the in-process benchmarks).
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { result, type BenchResult } from '../mappers/harness.js';
import { generateEvents } from '../mappers/cloudtrail.bench.js';
import { hasCommand, pipelineFile, runNode, runPipe, runShell } from './cli.js';
import { cloudTrailDataset, vpcFlowDataset } from './data.js';

export const WORK = process.env.PIPE_BENCH_DIR ?? join(tmpdir(), 'pipe-bench');

/** Interleaved repetitions of each end-to-end scenario (baseline, pipe, baseline, pipe …); medians are reported. */
const REPS = Math.max(1, Number(process.env.PIPE_BENCH_REPS ?? 3));

export interface E2eResult extends BenchResult {
  peakRssMb: number;
  /** CPU time of every thread (user + system), median over the repetitions. */
  cpuSeconds?: number;
  baselineCpuSeconds?: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * A tool outside Node as a second reference point (jq for CloudTrail, Miller for VPC Flow), when
 * it is installed: once, after the repetitions, with its ratio to the bare script's median.
 */
interface External {
  name: string;
  command: string;
  script: string;
}

const BARE = join(import.meta.dirname, 'bare-main.js');

async function scenario(name: string, dir: string, mapper: 'cloudtrail' | 'vpcflow', external?: External): Promise<E2eResult[]> {
  const file = pipelineFile(WORK, name, `{ type: files, path: ${dir}, include: ["**/*.gz"] }`, `[${mapper}]`);
  const runs: Array<{ bare: number; bareCpu: number; pipe: number; pipeCpu: number; rss: number }> = [];
  let rows = 0;
  let bytes = 0;
  for (let i = 0; i < REPS; i++) {
    const bare = await runNode(BARE, [mapper, dir, join(WORK, 'bare.jsonl')]);
    if (bare.code !== 0) throw new Error(`${name}: the bare script exited ${bare.code}: ${bare.stderr}`);
    ({ rows, bytes } = JSON.parse(bare.stdout) as { rows: number; bytes: number });
    const b = bare.seconds;
    const bc = bare.cpuSeconds;
    // A fresh state and output directory each time: every repetition collects everything.
    pipelineFile(WORK, name, `{ type: files, path: ${dir}, include: ["**/*.gz"] }`, `[${mapper}]`);
    const run = await runPipe(['run', file, '--no-progress']);
    if (run.code !== 0) throw new Error(`${name}: pipe exited ${run.code}: ${run.stderr}`);
    runs.push({ bare: b, bareCpu: bc, pipe: run.seconds, pipeCpu: run.cpuSeconds, rss: run.peakRssMb });
  }
  const bareSeconds = median(runs.map((r) => r.bare));
  const out: E2eResult[] = [{
    ...result(name, rows, bytes, median(runs.map((r) => r.pipe)), bareSeconds),
    // The median of the per-repetition ratios: each pair ran back to back, under the same load.
    ratio: Math.round(median(runs.map((r) => r.pipe / r.bare)) * 100) / 100,
    peakRssMb: Math.max(...runs.map((r) => r.rss)),
    cpuSeconds: median(runs.map((r) => r.pipeCpu)),
    baselineCpuSeconds: median(runs.map((r) => r.bareCpu)),
  }];
  if (external && hasCommand(external.command)) {
    const files = listGz(dir);
    const ext = await runShell(external.script, files);
    if (ext.code === 0) {
      out.push({ ...result(`  ${external.name}`, rows, bytes, ext.seconds, bareSeconds), peakRssMb: 0, cpuSeconds: ext.cpuSeconds, baselineCpuSeconds: median(runs.map((r) => r.bareCpu)) });
    } else {
      console.error(`${external.name}: exited ${ext.code}: ${ext.stderr.slice(0, 500)}`);
    }
  }
  return out;
}

function listGz(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.gz')) out.push(join(e.parentPath, e.name));
  }
  return out.sort();
}

export async function cloudTrail(): Promise<E2eResult[]> {
  const ds = cloudTrailDataset(WORK);
  return scenario('e2e cloudtrail files→jsonl', ds.dir, 'cloudtrail', {
    name: 'jq -c .Records[] (gunzip -c | jq)', command: 'jq', script: `gunzip -c "$@" | jq -c '.Records[]' > ${join(WORK, 'jq.jsonl')}`,
  });
}

export async function vpcFlow(): Promise<E2eResult[]> {
  const ds = vpcFlowDataset(WORK, 20, 25_000);
  return scenario('e2e vpcflow files→jsonl', ds.dir, 'vpcflow', {
    name: 'mlr --icsv --ifs space --ojsonl', command: 'mlr', script: `mlr --icsv --ifs space --ojsonl --gzin cat "$@" > ${join(WORK, 'mlr.jsonl')}`,
  });
}

/** One CloudTrail document of about 1 GB uncompressed: peak RSS must stay bounded. */
export async function hugeDocument(): Promise<E2eResult> {
  const dir = join(WORK, 'huge');
  const path = join(dir, 'huge.json.gz');
  mkdirSync(dir, { recursive: true });
  const events = generateEvents(2000, 3);
  const perEvent = events.reduce((n, e) => n + e.length, 0) / events.length;
  const count = Math.ceil(1e9 / perEvent);
  // Written once (the same seeded bytes every time), then reused.
  const marker = join(dir, `.complete-${count}`);
  if (!existsSync(marker)) {
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
    writeFileSync(marker, '');
  }
  const file = pipelineFile(WORK, 'huge-run', `{ type: files, path: ${path} }`, '[cloudtrail]');
  const run = await runPipe(['run', file, '--no-progress']);
  if (run.code !== 0) throw new Error(`huge: pipe exited ${run.code}: ${run.stderr}`);
  return { ...result('1 GB document (RSS bound 200 MB)', count, count * perEvent, run.seconds, run.seconds), peakRssMb: run.peakRssMb, cpuSeconds: run.cpuSeconds };
}

/** 10,000 small CloudTrail files: peak RSS must stay bounded. */
export async function manySmall(): Promise<E2eResult> {
  const ds = cloudTrailDataset(WORK, 10_000, 3);
  const file = pipelineFile(WORK, 'many-run', `{ type: files, path: ${ds.dir}, include: ["**/*.gz"] }`, '[cloudtrail]');
  const run = await runPipe(['run', file, '--no-progress']);
  if (run.code !== 0) throw new Error(`many: pipe exited ${run.code}: ${run.stderr}`);
  return { ...result('10,000 artifacts (RSS bound 200 MB)', ds.rows, 0, run.seconds, run.seconds), peakRssMb: run.peakRssMb, cpuSeconds: run.cpuSeconds };
}

/** `pipe --help` (goal under 300 ms) and a one-file pipeline end to end (goal under 600 ms): medians of 5, default threads. */
export async function startup(): Promise<E2eResult[]> {
  const help: number[] = [];
  for (let i = 0; i < 5; i++) help.push((await runPipe(['--help'])).seconds);
  const dir = join(WORK, 'one');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'one.json'), JSON.stringify({ Records: generateEvents(10, 1).map((e) => JSON.parse(e) as unknown) }));
  const one: number[] = [];
  for (let i = 0; i < 5; i++) {
    const file = pipelineFile(WORK, 'one-run', `{ type: files, path: ${dir} }`, '[cloudtrail]');
    one.push((await runPipe(['run', file, '--no-progress'])).seconds);
  }
  return [
    { ...result('pipe --help (goal 0.3 s)', 0, 0, median(help), 0.3), peakRssMb: 0 },
    { ...result('one-file pipeline (goal 0.6 s)', 10, 0, median(one), 0.6), peakRssMb: 0 },
  ];
}
