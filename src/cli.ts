/** Commander wiring only: parse, call the command, map errors to exit codes. */
import { Command, CommanderError, Option } from 'commander';
import { parseTime } from './config/units.js';
import { exitCodeFor, runCommand } from './commands/run.js';
import { listComponents } from './commands/list.js';
import { renderStatus, statusReport } from './commands/status.js';
import { validateCommand } from './commands/validate.js';
import { TtyProgress } from './engine/progress.js';
import { PipeError, toPipeError } from './errors.js';
import { captureProcessWarnings, StderrLogger, type LogFormat, type LogLevel } from './log.js';
import type { SourceScope } from './types.js';

interface CommonFlags {
  state?: string;
  progress?: boolean;
  logFormat: LogFormat;
  quiet?: boolean;
  verbose?: boolean;
}

interface RunFlags extends CommonFlags {
  once?: boolean;
  retryFailed?: boolean;
  dryRun?: boolean;
  prefix?: string;
  from?: string;
  to?: string;
}

const EXAMPLES = `
Examples:
  pipe run pipelines/local-cloudtrail.yml          collect the bundled CloudTrail fixtures
  pipe run pipelines/                              every pipeline in a directory, side by side
  pipe backfill pipelines/files.yml --from 7d      files modified in the last 7 days
  pipe status pipelines/local-cloudtrail.yml       what is done, failed, in progress
  pipe validate pipelines/*.yml                    check pipeline files

Exit codes: 0 done; 1 done but some artifacts failed; 2 usage or configuration error;
3 another run holds the pipeline's lock; 130 interrupted (after a clean flush and commit).`;

function common(cmd: Command): Command {
  return cmd
    .option('--state <path>', "state file (default: the pipeline's `state`, else ./.pipe/state.db)")
    .option('--progress', 'show a progress bar (default when stderr is a TTY)')
    .option('--no-progress', 'no progress bar')
    .addOption(new Option('--log-format <format>', 'stderr lines as text or JSON').choices(['text', 'json']).default('text'))
    .option('-q, --quiet', 'only warnings, errors and the summary')
    .option('-v, --verbose', 'debug lines too');
}

function logger(flags: CommonFlags, progress?: TtyProgress): StderrLogger {
  const level: LogLevel = flags.verbose ? 'debug' : flags.quiet ? 'warn' : 'info';
  return new StderrLogger({ format: flags.logFormat, level, beforeWrite: progress ? () => progress.clear() : undefined });
}

function scopeOf(flags: RunFlags): SourceScope {
  const scope: SourceScope = {};
  if (flags.prefix) scope.prefix = flags.prefix;
  for (const key of ['from', 'to'] as const) {
    const v = flags[key];
    if (v === undefined) continue;
    const t = parseTime(v);
    if (!t) throw new PipeError('PIPE_USAGE', `--${key} ${v}: expected an ISO 8601 time (2024-03-01T00:00:00Z) or a relative one (7d, 12h)`);
    scope[key] = t;
  }
  if (scope.from && scope.to && scope.from >= scope.to) throw new PipeError('PIPE_USAGE', '--from must be before --to');
  return scope;
}

async function runAction(command: 'run' | 'backfill', files: string[], flags: RunFlags): Promise<number> {
  const progress = (flags.progress ?? process.stderr.isTTY) && !flags.dryRun && flags.logFormat === 'text'
    ? new TtyProgress((s) => process.stderr.write(s)) : undefined;
  const log = logger(flags, progress);
  captureProcessWarnings(log);
  const stop = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) process.exit(130);
    log.info(`${sig}: stopping: flushing and committing what was read (again to quit at once)`);
    stop.abort(new PipeError('PIPE_INTERRUPTED', `interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await runCommand(files, {
      command, state: flags.state, once: !!flags.once, retryFailed: !!flags.retryFailed, dryRun: !!flags.dryRun,
      scope: scopeOf(flags), progress, jsonProgressMs: flags.logFormat === 'json' ? 5000 : 0, log, stop: stop.signal,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('pipe')
    .description('Collect AWS and local logs into clean JSONL: exactly once, resumable, streaming.')
    .version('0.1.0')
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError('(run pipe --help for usage)')
    .exitOverride();

  common(program.command('run').argument('<pipeline...>', 'pipeline files or directories of them'))
    .description('Collect everything not yet collected. Bounded sources exit when done; unbounded ones run until SIGINT/SIGTERM.')
    .option('--once', 'a single pass, even for polling sources')
    .option('--retry-failed', 'try failed artifacts again (from where they failed)')
    .option('--dry-run', 'list what would be collected; collect nothing')
    .addHelpText('after', '\nExample:\n  pipe run pipelines/local-cloudtrail.yml --no-progress')
    .action(async (files: string[], flags: RunFlags) => setExit(await runAction('run', files, flags)));

  common(program.command('backfill').argument('<pipeline>', 'pipeline file'))
    .description('One-shot collection of history: a prefix and/or a time range. Resumable; never re-emits what was committed.')
    .option('--prefix <prefix>', 'only artifacts under this key/path prefix')
    .option('--from <time>', 'ISO 8601 or relative (7d, 12h)')
    .option('--to <time>', 'ISO 8601 or relative (7d, 12h)')
    .option('--retry-failed', 'try failed artifacts again')
    .option('--dry-run', 'list what would be collected; collect nothing')
    .addHelpText('after', '\nExample:\n  pipe backfill pipelines/local-vpcflow.yml --from 2024-03-01 --to 2024-03-02')
    .action(async (file: string, flags: RunFlags) => setExit(await runAction('backfill', [file], { ...flags, once: true })));

  program.command('validate').argument('<pipeline...>', 'pipeline files or directories of them')
    .description('Check pipeline files: every problem with its YAML path and line.')
    .action(async (files: string[]) => setExit(await validateCommand(files)));

  common(program.command('status').argument('<pipeline>', 'pipeline file'))
    .description('Artifacts done / failed (with reasons) / in progress, stream positions, last runs.')
    .option('--json', 'machine-readable')
    .action(async (file: string, flags: CommonFlags & { json?: boolean }) => {
      const report = await statusReport(file, flags.state);
      process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : renderStatus(report));
      setExit(0);
    });

  program.command('list').argument('[type]', 'a component type or kind (source, loader, mapper, sink)')
    .description('Every component type with its options, defaults and examples.')
    .action((type: string | undefined) => {
      const text = listComponents(type);
      if (text === undefined) throw new PipeError('PIPE_USAGE', `no component or kind named '${type}'`);
      process.stdout.write(text);
      setExit(0);
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; usage errors have already been printed by commander.
      return err.exitCode === 0 ? 0 : 2;
    }
    const e = toPipeError(err, 'PIPE_INTERNAL');
    process.stderr.write(`pipe: error: ${e.message}${e.code === 'PIPE_INTERNAL' ? '' : ` [${e.code}]`}\n`);
    if (e.code === 'PIPE_INTERNAL' && process.env.PIPE_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return exitCodeFor(e);
  }
}
