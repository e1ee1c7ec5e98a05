/** Commander wiring only: parse, call the command, map errors to exit codes. */
// Commands other than run and backfill are imported when used: every start pays for what it loads.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { parseTime } from './config/units.js';
import { exitCodeFor, runCommand } from './commands/run.js';
import { stopOnSignals } from './commands/signals.js';
import type { ValidateFlags } from './commands/validate.js';
import { descriptionOf, HELP, helpAfter } from './commands/help.js';
import type { TailFlags } from './commands/tail.js';
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
  threads?: string;
  stopAfterFailures?: string;
  acceptNewState?: boolean;
}

const EXAMPLES = `
Examples:
  pipe run pipelines/local-cloudtrail.yml          collect the bundled CloudTrail fixtures
  pipe run pipelines/                              every pipeline in a directory, side by side
  pipe backfill pipelines/local-vpcflow.yml --from 7d  files modified in the last 7 days
  pipe backfill pipelines/cloudtrail.yml --prefix AWSLogs/123456789012/ --from 2024-03-01 --to 2024-03-08
                                                   one account's CloudTrail for a week, from S3
  pipe status pipelines/local-cloudtrail.yml       what is done, failed, in progress
  pipe validate --ping pipelines/*.yml             check pipeline files and that their sources and sinks can be reached

Exit codes: 0 done; 1 done but some artifacts failed; 2 usage or configuration error;
3 another run holds the pipeline's lock; 130 interrupted (after a clean flush and commit).
Every command has its own --help with a description and examples: pipe <command> --help.`;

function common(cmd: Command): Command {
  return cmd
    .option('--state <path>', "state file, or a postgres:// URL shared by many workers (default: the pipeline's `state`, else ./.pipe/state.db)")
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

function threadsOf(value: string | undefined): number {
  if (value === undefined) return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 64) throw new PipeError('PIPE_USAGE', `--threads ${value}: expected a whole number from 0 to 64`);
  return n;
}

function failureLimitOf(value: string | undefined): number {
  if (value === undefined) return 25;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new PipeError('PIPE_USAGE', `--stop-after-failures ${value}: expected a whole number (0: never stop early)`);
  return n;
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
  const unhook = stopOnSignals(log, stop);
  try {
    return await runCommand(files, {
      command, state: flags.state, once: !!flags.once, retryFailed: !!flags.retryFailed, dryRun: !!flags.dryRun,
      scope: scopeOf(flags), progress, jsonProgressMs: flags.logFormat === 'json' ? 5000 : 0, log, stop: stop.signal,
      threads: threadsOf(flags.threads),
      failureLimit: failureLimitOf(flags.stopAfterFailures), acceptNewState: !!flags.acceptNewState,
    });
  } finally {
    unhook();
  }
}

/** The package's version, as package.json gives it (src/ and dist/ both sit one level below it). */
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('pipe')
    .description('Collect AWS and local logs into clean JSONL: exactly once, resumable, streaming.')
    .version(VERSION)
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError('(run pipe --help for usage)')
    .exitOverride();

  common(program.command('run').argument('<pipeline...>', 'pipeline files or directories of them'))
    .summary(HELP.run.summary).description(descriptionOf('run'))
    .option('--once', 'a single pass, even for polling sources')
    .option('--retry-failed', 'try failed artifacts again (from where they failed)')
    .option('--dry-run', 'list what would be collected; collect nothing')
    .option('--threads <n>', 'worker threads decoding artifacts (default: one per core; 0: none)')
    .option('--stop-after-failures <n>', 'stop early after n artifacts in a row fail the same way (default 25; 0: never)')
    .option('--accept-new-state', 'collect into a sink written with another (lost) state file, knowing rows will repeat')
    .addHelpText('after', helpAfter('run'))
    .action(async (files: string[], flags: RunFlags) => setExit(await runAction('run', files, flags)));

  common(program.command('backfill').argument('<pipeline>', 'pipeline file'))
    .summary(HELP.backfill.summary).description(descriptionOf('backfill'))
    .option('--prefix <prefix>', 'only artifacts under this key/path prefix')
    .option('--from <time>', 'ISO 8601 or relative (7d, 12h)')
    .option('--to <time>', 'ISO 8601 or relative (7d, 12h)')
    .option('--retry-failed', 'try failed artifacts again')
    .option('--dry-run', 'list what would be collected; collect nothing')
    .option('--threads <n>', 'worker threads decoding artifacts (default: one per core; 0: none)')
    .option('--stop-after-failures <n>', 'stop early after n artifacts in a row fail the same way (default 25; 0: never)')
    .option('--accept-new-state', 'collect into a sink written with another (lost) state file, knowing rows will repeat')
    .addHelpText('after', helpAfter('backfill'))
    .action(async (file: string, flags: RunFlags) => setExit(await runAction('backfill', [file], { ...flags, once: true })));

  common(program.command('tail').argument('<dir>', 'log directory to follow'))
    .summary(HELP.tail.summary).description(descriptionOf('tail'))
    .option('--include <glob>', 'a glob of relative paths to follow; repeatable (default: every file)', (v: string, all: string[] = []) => [...all, v])
    .option('--exclude <glob>', 'a glob of relative paths to leave out; repeatable', (v: string, all: string[] = []) => [...all, v])
    .option('--mapper <name>', 'a mapper to apply, by type or module specifier (e.g. vpcflow); repeatable', (v: string, all: string[] = []) => [...all, v])
    .option('--out <dir>', 'write JSONL chunk files here, exactly once (default: stdout, at least once)')
    .addOption(new Option('--start-at <where>', 'where to start in files present at the first run').choices(['beginning', 'end']))
    .option('--once', 'read what is there now, then exit')
    .addHelpText('after', helpAfter('tail'))
    .action(async (dir: string, flags: TailFlags) => setExit(await (await import('./commands/tail.js')).tailCommand(dir, flags)));

  program.command('validate').argument('<pipeline...>', 'pipeline files or directories of them')
    .summary(HELP.validate.summary).description(descriptionOf('validate'))
    .addHelpText('after', helpAfter('validate'))
    .option('--ping', 'also check the source and sink can be reached: bucket listable, log group present, directory readable or writable')
    .action(async (files: string[], flags: ValidateFlags) => setExit(await (await import('./commands/validate.js')).validateCommand(files, flags)));

  program.command('status').argument('<pipeline>', 'pipeline file')
    .summary(HELP.status.summary).description(descriptionOf('status'))
    .option('--state <path>', "state file, or a postgres:// URL shared by many workers (default: the pipeline's `state`, else ./.pipe/state.db)")
    .option('--json', 'the same content as one JSON object, for scripts (lags in lagMs)')
    .addHelpText('after', helpAfter('status'))
    .action(async (file: string, flags: { state?: string; json?: boolean }) => {
      const { renderStatus, statusReport } = await import('./commands/status.js');
      const report = await statusReport(file, flags.state);
      process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : renderStatus(report));
      setExit(0);
    });

  program.command('list').argument('[type]', 'a component type or kind (source, loader, mapper, sink)')
    .summary(HELP.list.summary).description(descriptionOf('list'))
    .addHelpText('after', helpAfter('list'))
    .action(async (type: string | undefined) => {
      const text = (await import('./commands/list.js')).listComponents(type);
      if (text === undefined) throw new PipeError('PIPE_USAGE', `no component or kind named '${type}'`);
      process.stdout.write(text);
      setExit(0);
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  // `pipe … | head`: a reader that goes away early is not an error of pipe's.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
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
