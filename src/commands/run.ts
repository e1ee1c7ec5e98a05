/**
 * `pipe run` and `pipe backfill`: several pipelines side by side in one process, each isolated
 * (its own lock, state keys and failures); the exit code is the worst of theirs.
 */
import type { PipelineConfig } from '../config/load.js';
import { buildPipeline } from '../engine/build.js';
import { formatBytes, formatSeconds, num, progressFacts, TtyProgress } from '../engine/progress.js';
import { PipelineRun, type RunStats } from '../engine/run.js';
import { endPrestarted } from '../engine/prestart.js';
import { wirePlan } from '../engine/worker-plan.js';
import { PipeError, toPipeError } from '../errors.js';
import type { StderrLogger } from '../log.js';
import { importBuiltin } from '../builtin-modules.js';
import type { RunSummary } from '../state/store.js';
import type { SourceScope } from '../types.js';
import { loadPipelines, newRunId, pipelineFiles, statePath, Stores } from './common.js';

export interface RunCommandOptions {
  command: 'run' | 'backfill';
  state?: string;
  once: boolean;
  retryFailed: boolean;
  dryRun: boolean;
  scope: SourceScope;
  /** The terminal's progress view, when stderr is a TTY and --progress is on. */
  progress: TtyProgress | undefined;
  jsonProgressMs: number;
  log: StderrLogger;
  stop: AbortSignal;
  /** Worker threads per pipeline for decoding artifacts; 0 keeps everything on the main thread. */
  threads: number;
  /** Consecutive identical failures that stop a run early (0: never). */
  failureLimit: number;
  /** Collect into a sink that was written with another state file, on purpose. */
  acceptNewState: boolean;
}

export function exitCodeFor(err: unknown): number {
  const code = err instanceof PipeError ? err.code : undefined;
  if (code === 'PIPE_LOCKED' || code === 'PIPE_LOCK_LOST') return 3;
  if (code === 'PIPE_CONFIG_INVALID' || code === 'PIPE_USAGE' || code === 'PIPE_STATE_CORRUPT' || code === 'PIPE_STATE_MISMATCH' || code === 'PIPE_COMPONENT_LOAD') return 2;
  return 1;
}

/** The one line every run ends with. */
export function summaryLine(stats: RunStats, now = Date.now()): { text: string; data: Record<string, unknown> } {
  const f = progressFacts(stats, now);
  const data = {
    artifacts: stats.done + stats.failed, artifacts_unchanged: stats.unchanged, failed: stats.failed, rows: stats.rows,
    row_errors: stats.rowErrors, skipped: stats.skipped, bytes_in: stats.bytesIn,
    rows_per_s: Math.round(f.rows_per_s as number), duration_s: Number((f.elapsed_s as number).toFixed(3)),
  };
  const extras = [
    stats.unchanged ? `${stats.unchanged} unchanged` : '',
    stats.previouslyFailed ? `${stats.previouslyFailed} failed earlier (--retry-failed)` : '',
    stats.rowErrors ? `${stats.rowErrors} row errors` : '',
    stats.skipped ? `${stats.skipped} skipped` : '',
    stats.vanished ? `${stats.vanished} vanished since listed, skipped` : '',
  ].filter(Boolean);
  const text = `${data.artifacts} artifacts, ${num(data.rows)} rows, ${formatBytes(stats.bytesIn)} in, `
    + `${num(data.rows_per_s)} rows/s, ${stats.failed} failed, ${formatSeconds(f.elapsed_s as number)}`
    + (extras.length ? ` (${extras.join(', ')})` : '');
  return { text, data };
}

/** The exit code of a finished run: its error's, else its summary's. */
function runExitCode(summary: RunSummary): number {
  const failure = (summary as { error?: PipeError }).error;
  return failure ? exitCodeFor(failure) : summary.exitCode;
}

/** Writes the one summary line every run ends with, and returns the run's exit code. */
export function reportSummary(log: StderrLogger, stats: RunStats, summary: RunSummary): number {
  const s = summaryLine(stats);
  log.record('summary', s.text, { ...s.data, exit_code: summary.exitCode });
  return runExitCode(summary);
}

async function runOne(cfg: PipelineConfig, opts: RunCommandOptions, stores: Stores, progress: TtyProgress | undefined): Promise<number> {
  const log = opts.log.child(cfg.name);
  const store = stores.get(statePath(cfg, opts.state));
  const ctx = { pipeline: cfg.name, store, log, baseDir: cfg.baseDir };
  const built = await buildPipeline(cfg, ctx, (type) => importBuiltin('loader', type));
  const run = new PipelineRun({
    pipeline: cfg.name, command: opts.command, store, host: stores.host, runId: newRunId(), once: opts.once,
    retryFailed: opts.retryFailed, dryRun: opts.dryRun, scope: opts.scope, stop: opts.stop, log,
    threads: opts.threads, workerPlan: wirePlan(cfg, built.loaders), failureLimit: opts.failureLimit, acceptNewState: opts.acceptNewState,
    // The lock's lease (renewed every third of it); short leases are for tests of takeover.
    leaseMs: Number(process.env.PIPE_LOCK_LEASE_MS) || 30_000,
  }, built, ctx);
  run.on('failed', (f) => log.warn(`artifact failed: ${f.uri}: ${f.message}`, { code: f.code, position: f.position }));
  run.on('vanished', (f) => log.warn(`artifact skipped: ${f.message}`, { code: f.code }));
  let dry = 0;
  let dryBytes = 0;
  run.on('dryRun', (d) => {
    dry++;
    dryBytes += d.size ?? 0;
    log.record('would-collect', `would collect ${d.uri}${d.size !== undefined ? ` (${formatBytes(d.size)})` : ''}${d.state !== 'new' ? ` [${d.state}]` : ''}`, { uri: d.uri, size: d.size, state: d.state });
  });
  progress?.add({ name: cfg.name, stats: run.stats });
  const ticker = opts.jsonProgressMs > 0 ? setInterval(() => log.record('progress', '', progressFacts(run.stats)), opts.jsonProgressMs) : undefined;
  ticker?.unref();
  try {
    const summary = await run.run();
    if (opts.dryRun) {
      log.record('dry-run', `dry run: ${dry} artifacts (${formatBytes(dryBytes)}) would be collected, ${run.stats.unchanged} already collected`, { artifacts: dry, bytes: dryBytes, unchanged: run.stats.unchanged });
      return runExitCode(summary);
    }
    return reportSummary(log, run.stats, summary);
  } finally {
    clearInterval(ticker);
  }
}

export async function runCommand(args: string[], opts: RunCommandOptions): Promise<number> {
  const configs = await loadPipelines(await pipelineFiles(args));
  const stores = new Stores();
  const progress = opts.progress;
  try {
    progress?.start();
    const codes = await Promise.all(configs.map((cfg) => runOne(cfg, opts, stores, progress).catch((err: unknown) => {
      const e = toPipeError(err, 'PIPE_INTERNAL');
      opts.log.child(cfg.name).error(e.message, { code: e.code });
      return exitCodeFor(e);
    })));
    return Math.max(0, ...codes);
  } finally {
    progress?.stop();
    await endPrestarted();
    await stores.closeAll();
  }
}
