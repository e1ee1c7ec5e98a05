/**
 * tail source: append-to-commit latency. A followed file gets a timed line every ~25 ms (jittered,
 * so appends do not beat in step with the sink's timer) while a second file takes a steady 2,000
 * lines/s; each timed line is clocked from just before its append until it is in a committed chunk
 * file (renamed to its final name by the jsonl sink). The contract is "within flushInterval": the
 * baseline is that interval, so the ratio is p99 / flushInterval (under 1 keeps the contract).
 * `run` uses the default flushInterval (1 s); `runFast` 100 ms, to show what reading itself costs.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPipeline } from '../../src/config/load.js';
import { makeResolver } from '../../src/config/resolve.js';
import { buildPipeline } from '../../src/engine/build.js';
import { PipelineRun } from '../../src/engine/run.js';
import { builtins } from '../../src/registry.js';
import { SqliteStore } from '../../src/state/sqlite.js';
import type { Logger, StreamSource } from '../../src/types.js';
import { prng, result, runIfMain, type BenchResult } from '../mappers/harness.js';

export interface LatencyResult extends BenchResult {
  flushIntervalMs: number;
  /** Append → committed. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Append → out of the tail source (its own part; the rest is the sink's timer and commit). */
  readP50Ms: number;
  readP99Ms: number;
}

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function measure(flushIntervalMs: number, timedLines: number): Promise<LatencyResult> {
  const dir = mkdtempSync(join(tmpdir(), 'pipe-bench-tail-'));
  const logs = join(dir, 'logs');
  const out = join(dir, 'out');
  mkdirSync(logs);
  mkdirSync(out);
  const timed = join(logs, 'timed.log');
  const bulk = join(logs, 'bulk.log');
  writeFileSync(timed, '');
  writeFileSync(bulk, '');
  const file = join(dir, 'p.yml');
  writeFileSync(file, `name: bench\nsource: { type: tail, path: ${logs} }\nsink: { type: jsonl, dir: ${out}, flushInterval: ${flushIntervalMs}ms }\n`);
  const cfg = await loadPipeline(file, { env: {}, resolve: makeResolver(builtins) });
  const store = new SqliteStore(join(dir, 'state.db'), 'bench');
  const ctx = { pipeline: 'bench', store, log: quiet, baseDir: dir };
  const built = await buildPipeline(cfg, ctx, (t) => builtins.loader[t]);
  const stop = new AbortController();
  const pipeRun = new PipelineRun({
    pipeline: 'bench', command: 'run', store, host: 'bench', runId: `bench${Date.now()}`, once: false,
    retryFailed: false, dryRun: false, scope: {}, stop: stop.signal, log: quiet,
  }, built, ctx);
  // The source's part: until the line comes out of the tail source.
  const appended = new Map<number, number>();
  const readLatencies: number[] = [];
  const source = built.source as StreamSource;
  const read = source.read.bind(source);
  source.read = async function* timedRead(readCtx) {
    for await (const chunk of read(readCtx)) {
      const now = performance.now();
      for (const record of chunk.records) {
        const m = /^timed (\d+)$/.exec(String(record));
        const t = m ? appended.get(Number(m[1])) : undefined;
        if (t !== undefined) readLatencies.push(now - t);
      }
      yield chunk;
    }
  };
  const running = pipeRun.run();

  // Committed lines are seen when their chunk file gets its final name.
  const latencies: number[] = [];
  const seen = new Set<string>();
  const scan = (): void => {
    const now = performance.now();
    for (const name of readdirSync(out)) {
      if (!name.endsWith('.jsonl') || seen.has(name)) continue;
      seen.add(name);
      for (const line of readFileSync(join(out, name), 'utf8').split('\n')) {
        const m = /"message":"timed (\d+)"/.exec(line);
        const t0 = m ? appended.get(Number(m[1])) : undefined;
        if (t0 !== undefined) latencies.push(now - t0);
      }
    }
  };
  const watcher = watch(out, scan);
  const poller = setInterval(scan, 5);

  let bulkLines = 0;
  let bulkBytes = 0;
  const bulkTimer = setInterval(() => {
    let text = '';
    for (let i = 0; i < 20; i++) text += `bulk ${bulkLines++} ${'x'.repeat(80)}\n`;
    bulkBytes += text.length;
    appendFileSync(bulk, text);
  }, 10);
  await sleep(500);
  const random = prng(7);
  const t0 = performance.now();
  let timedBytes = 0;
  for (let i = 0; i < timedLines; i++) {
    const line = `timed ${i}\n`;
    appended.set(i, performance.now());
    appendFileSync(timed, line);
    timedBytes += line.length;
    await sleep(15 + Math.floor(random() * 20));
  }
  clearInterval(bulkTimer);
  const deadline = performance.now() + flushIntervalMs * 3 + 2000;
  while (latencies.length < timedLines && performance.now() < deadline) await sleep(10);
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(poller);
  watcher.close();
  stop.abort();
  await running;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  if (latencies.length !== timedLines) throw new Error(`tail latency bench: ${latencies.length} of ${timedLines} timed lines committed`);

  latencies.sort((a, b) => a - b);
  readLatencies.sort((a, b) => a - b);
  const p99 = percentile(latencies, 99);
  const r = result(`tail append-to-commit (flushInterval ${flushIntervalMs} ms)`, timedLines + bulkLines, timedBytes + bulkBytes, seconds, flushIntervalMs / 1000);
  const round = (n: number): number => Math.round(n * 10) / 10;
  return {
    ...r, ratio: round(p99 / flushIntervalMs * 100) / 100, flushIntervalMs, p50Ms: round(percentile(latencies, 50)), p99Ms: round(p99), maxMs: round(latencies.at(-1)!),
    readP50Ms: round(percentile(readLatencies, 50)), readP99Ms: round(percentile(readLatencies, 99)),
  };
}

export function run(): Promise<LatencyResult> {
  return measure(1000, 200);
}

export function runFast(): Promise<LatencyResult> {
  return measure(100, 200);
}

/** Both, for `npm run bench`'s table: the percentiles go in the names (the table has no column for them). */
export async function table(): Promise<LatencyResult[]> {
  const out: LatencyResult[] = [];
  for (const r of [await run(), await runFast()]) {
    out.push({ ...r, name: `tail ${r.flushIntervalMs} ms: p50 ${Math.round(r.p50Ms)} p99 ${Math.round(r.p99Ms)} ms` });
  }
  return out;
}

runIfMain(import.meta.url, async () => {
  const slow = await run();
  console.log(JSON.stringify(await runFast()));
  return slow;
});
