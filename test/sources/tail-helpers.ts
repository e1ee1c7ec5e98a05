/** The tail source run in-process over real files: a pipeline run that can be stopped and resumed. */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPipeline } from '../../src/config/load.js';
import { makeResolver } from '../../src/config/resolve.js';
import { buildPipeline } from '../../src/engine/build.js';
import { PipelineRun } from '../../src/engine/run.js';
import { builtins } from '../../src/registry.js';
import { SqliteStore } from '../../src/state/sqlite.js';
import type { RunSummary } from '../../src/state/store.js';
import type { Logger } from '../../src/types.js';
import { readSink } from '../helpers/cli.js';

export const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface TailRun {
  /** Resolves with the summary once the run ended (after stop(), or by itself with once). */
  done: Promise<RunSummary>;
  stop(): Promise<RunSummary>;
  run: PipelineRun;
}

/**
 * Starts the pipeline `<dir>/p.yml` (tail over `<dir>/logs`, jsonl into `<dir>/out`, state in
 * `<dir>/state.db`). `source` adds options to the tail source, `sink` to the jsonl sink.
 */
export async function startTail(dir: string, opts: { source?: string; sink?: string; once?: boolean; log?: Logger } = {}): Promise<TailRun> {
  const file = join(dir, 'p.yml');
  const options = (given: string | undefined, defaults: Record<string, string>): string =>
    [...Object.entries(defaults).filter(([k]) => !given?.includes(`${k}:`)).map(([k, v]) => `, ${k}: ${v}`), given ? `, ${given}` : ''].join('');
  writeFileSync(file, `name: t
source: { type: tail${options(opts.source, { path: join(dir, 'logs'), pollInterval: '100ms', rotateWait: '300ms' })} }
sink: { type: jsonl, dir: ${join(dir, 'out')}${options(opts.sink, { flushInterval: '50ms' })} }
`);
  const cfg = await loadPipeline(file, { env: {}, resolve: makeResolver(builtins) });
  const store = new SqliteStore(join(dir, 'state.db'), 'h');
  const log = opts.log ?? quiet;
  const ctx = { pipeline: 't', store, log, baseDir: dir };
  const built = await buildPipeline(cfg, ctx, (t) => builtins.loader[t]);
  const stop = new AbortController();
  const run = new PipelineRun({
    pipeline: 't', command: 'run', store, host: 'h', runId: `r${Date.now()}${Math.random().toString(16).slice(2, 6)}`, once: !!opts.once,
    retryFailed: false, dryRun: false, scope: {}, stop: stop.signal, log,
  }, built, ctx);
  const done = run.run().finally(() => store.close());
  return {
    done, run,
    stop: () => {
      stop.abort();
      return done;
    },
  };
}

/** One `--once` pass: everything readable now, then the run ends. */
export async function tailOnce(dir: string, opts: { source?: string; sink?: string } = {}): Promise<RunSummary> {
  return (await startTail(dir, { ...opts, once: true })).done;
}

/** Committed messages, in sink order. */
export function messages(dir: string): string[] {
  return readSink(join(dir, 'out')).map((r) => r.message as string);
}

/** Waits until `check` holds (polling), or fails with what was last seen. */
export async function waitFor<T>(what: string, get: () => T, check: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (check(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last saw ${JSON.stringify(v).slice(0, 400)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `n` numbered lines, `prefix 0` … `prefix n-1`, each with its newline. */
export function numbered(prefix: string, from: number, n: number): string {
  let s = '';
  for (let i = from; i < from + n; i++) s += `${prefix} ${i}\n`;
  return s;
}

/** The stored tail positions of the test pipeline: the index and every generation's cursor. */
export async function storedPositions(dir: string): Promise<{ index: { ids: string[] } | undefined; cursors: Array<Record<string, unknown>> }> {
  const store = new SqliteStore(join(dir, 'state.db'), 'h');
  try {
    const report = await store.status('t');
    const index = report.positions.find((p) => p.stream === 'tail')?.value as { ids: string[] } | undefined;
    const cursors = report.positions.filter((p) => p.stream.startsWith('tail:')).map((p) => p.value as Record<string, unknown>);
    return { index, cursors };
  } finally {
    await store.close();
  }
}

/** Row errors written to the sink's dead-letter files. */
export function deadLetters(dir: string): Array<Record<string, unknown>> {
  const root = join(dir, 'out', '_errors');
  const out: Array<Record<string, unknown>> = [];
  for (const name of existsSync(root) ? readdirSync(root) : []) {
    if (!name.endsWith('.jsonl')) continue;
    for (const l of readFileSync(join(root, name), 'utf8').split('\n')) if (l) out.push(JSON.parse(l) as Record<string, unknown>);
  }
  return out;
}
