/**
 * `pipe tail <dir>`: ad-hoc tailing of a local log directory without a pipeline file. The command
 * builds the pipeline a user would otherwise write (a `tail` source, the `--mapper`s, a `jsonl` sink
 * into `--out` or the `stdout` sink) and runs it like `pipe run` until SIGINT/SIGTERM, then flushes,
 * commits and exits 130. State goes to `--state` or ./.pipe/state.db under a pipeline name derived
 * from the directory, so tailing the same directory again resumes where it stopped.
 */
import { stopOnSignals } from './signals.js';
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { ComponentConfig, PipelineConfig } from '../config/load.js';
import { validateComponentOptions } from '../config/options.js';
import { isComponentModule } from '../config/resolve.js';
import { buildPipeline } from '../engine/build.js';
import { progressFacts, TtyProgress } from '../engine/progress.js';
import { PipelineRun } from '../engine/run.js';
import { PipeError } from '../errors.js';
import { captureProcessWarnings, StderrLogger, type LogFormat } from '../log.js';
import { importBuiltin } from '../builtin-modules.js';
import type { ComponentKind } from '../spec.js';
import { newRunId, resolver, statePath, Stores } from './common.js';
import { reportSummary } from './run.js';

export interface TailFlags {
  include?: string[];
  exclude?: string[];
  mapper?: string[];
  out?: string;
  startAt?: 'beginning' | 'end';
  once?: boolean;
  state?: string;
  progress?: boolean;
  logFormat: LogFormat;
  quiet?: boolean;
  verbose?: boolean;
}

/** `tail-<directory name>-<hash of its absolute path>`: stable for a directory, distinct between two. */
export function tailPipelineName(dir: string): string {
  const abs = resolve(dir);
  const name = basename(abs).replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 40) || 'root';
  return `tail-${name}-${createHash('sha256').update(abs).digest('hex').slice(0, 8)}`;
}

async function component(kind: ComponentKind, type: string, values: Record<string, unknown>, at: string): Promise<ComponentConfig> {
  const found = await resolver(kind, type, process.cwd());
  if (!isComponentModule(found)) {
    const reason = found && 'reason' in found ? found.reason : `unknown ${kind} type '${type}'`;
    throw new PipeError('PIPE_USAGE', `${at}: ${reason}`);
  }
  if (found.spec.kind !== kind) throw new PipeError('PIPE_USAGE', `${at}: '${type}' is a ${found.spec.kind}, not a ${kind}`);
  const { options, problems } = validateComponentOptions(found.spec, values, at);
  if (problems.length) {
    const hint = kind === 'mapper' ? ' (a mapper that needs options is used from a pipeline file: pipe run)' : '';
    throw new PipeError('PIPE_USAGE', problems.map((p) => `${p.path}: ${p.message}`).join('\n') + hint);
  }
  return { type, path: at, line: 0, options, module: found };
}

/** The in-memory pipeline `pipe tail` runs. */
export async function tailPipeline(dir: string, flags: TailFlags): Promise<PipelineConfig> {
  const abs = resolve(dir);
  const st = await stat(abs).catch(() => undefined);
  if (!st?.isDirectory()) throw new PipeError('PIPE_USAGE', `${dir}: not a directory`);
  const source = await component('source', 'tail', {
    path: abs, ...(flags.include?.length ? { include: flags.include } : {}), ...(flags.exclude?.length ? { exclude: flags.exclude } : {}),
    ...(flags.startAt ? { startAt: flags.startAt } : {}),
  }, 'source');
  const mappers: ComponentConfig[] = [];
  for (const [i, m] of (flags.mapper ?? []).entries()) mappers.push(await component('mapper', m, {}, `--mapper ${m}${flags.mapper!.length > 1 ? ` [${i}]` : ''}`));
  const sink = flags.out ? await component('sink', 'jsonl', { dir: resolve(flags.out) }, '--out') : await component('sink', 'stdout', {}, 'sink');
  return { name: tailPipelineName(abs), file: abs, baseDir: process.cwd(), source, mappers, sink };
}

/** Runs `pipe tail` to its end (a signal, or the end of a --once pass); returns the exit code. */
export async function tailCommand(dir: string, flags: TailFlags): Promise<number> {
  const progress = (flags.progress ?? process.stderr.isTTY) && flags.logFormat === 'text' ? new TtyProgress((s) => process.stderr.write(s)) : undefined;
  const root = new StderrLogger({
    format: flags.logFormat, level: flags.verbose ? 'debug' : flags.quiet ? 'warn' : 'info', beforeWrite: progress ? () => progress.clear() : undefined,
  });
  captureProcessWarnings(root);
  const cfg = await tailPipeline(dir, flags);
  const log = root.child(cfg.name);
  const stop = new AbortController();
  const unhook = stopOnSignals(log, stop);
  const stores = new Stores();
  let ticker: NodeJS.Timeout | undefined;
  try {
    const store = stores.get(statePath(undefined, flags.state));
    const ctx = { pipeline: cfg.name, store, log, baseDir: cfg.baseDir };
    const built = await buildPipeline(cfg, ctx, (type) => importBuiltin('loader', type));
    const run = new PipelineRun({
      pipeline: cfg.name, command: 'run', store, host: stores.host, runId: newRunId(), once: !!flags.once,
      retryFailed: false, dryRun: false, scope: {}, stop: stop.signal, log,
    }, built, ctx);
    if (flags.logFormat === 'json') ticker = setInterval(() => log.record('progress', '', progressFacts(run.stats)), 5000).unref();
    log.info(`following ${cfg.source.options.path} into ${flags.out ? resolve(flags.out) : 'stdout'} (state ${store.location}); Ctrl-C to stop`);
    progress?.add({ name: cfg.name, stats: run.stats });
    progress?.start();
    const summary = await run.run();
    progress?.stop();
    return reportSummary(log, run.stats, summary);
  } finally {
    clearInterval(ticker);
    progress?.stop();
    unhook();
    await stores.closeAll();
  }
}
