/**
 * The long help of every command: what it does, when to use it, examples and exit codes, kept here
 * so src/cli.ts stays wiring. Each command's `--help` prints its summary, description, arguments,
 * every option (from commander), then this text.
 */
export type CommandName = 'run' | 'backfill' | 'tail' | 'validate' | 'status' | 'list';

interface CommandHelp {
  /** One line, shown in `pipe --help`. */
  summary: string;
  /** The paragraph under Usage in `pipe <command> --help`. */
  description: string;
  examples: Array<[command: string, what: string]>;
  /** Extra paragraphs after the examples (exit codes, files). */
  notes?: string;
}

const EXIT_RUN = `Exit codes:
  0    done
  1    done, but some artifacts failed (see pipe status; retry with --retry-failed)
  2    usage or configuration error
  3    another run holds the pipeline's lock
  130  interrupted by SIGINT/SIGTERM, after a clean flush and commit`;

export const HELP: Record<CommandName, CommandHelp> = {
  run: {
    summary: 'Collect everything not yet collected, once or (polling and tail sources) until stopped.',
    description: `Collect everything not yet collected, exactly once, into the pipeline's sink.
Bounded sources (files, s3 and cloudwatch without poll) exit when done; polling and tail sources run
until SIGINT/SIGTERM, then flush, commit and exit 130. Several files, or a directory of them, run side
by side in one process, each with its own lock, state keys and failure handling. A rerun resumes
from the last commit and never repeats a committed row.`,
    examples: [
      ['pipe run pipelines/local-cloudtrail.yml', 'collect the bundled CloudTrail fixtures'],
      ['pipe run pipelines/ --log-format json', 'every pipeline in a directory, side by side, JSON logs and progress lines'],
      ['pipe run pipelines/cloudtrail.yml --dry-run', 'what would be collected (counts, sizes, first keys); nothing written'],
    ],
    notes: EXIT_RUN,
  },
  backfill: {
    summary: 'One-shot collection of history: a prefix and/or a time range.',
    description: `One-shot collection of history, limited by a key/path prefix and/or a time range (--from,
--to). Resumable like run: it shares the pipeline's state, so it never re-emits what any run
committed, and an interrupted backfill started again continues where it stopped.`,
    examples: [
      ['pipe backfill pipelines/local-vpcflow.yml --from 7d', 'files modified in the last 7 days'],
      ['pipe backfill pipelines/cloudtrail.yml --prefix AWSLogs/123456789012/ --from 2024-03-01 --to 2024-03-08', "one account's CloudTrail for a week, from S3"],
      ['pipe backfill pipelines/cloudtrail-cloudwatch.yml --from 2024-03-01T00:00:00Z --to 2024-03-02T00:00:00Z --dry-run', 'which log streams a day of CloudWatch would read'],
    ],
    notes: EXIT_RUN,
  },
  tail: {
    summary: 'Follow a local log directory without YAML: JSONL into --out, or stdout.',
    description: `Ad-hoc tailing of a local log directory, without a pipeline file: new files, appends,
rotations (rename, copytruncate, gzip) and truncation are followed. With --out, JSONL chunk files
are committed exactly once; without it rows go to stdout, at least once. Runs until SIGINT/SIGTERM
(or with --once until what is there now is read); a rerun with the same --state resumes.`,
    examples: [
      ["pipe tail /var/log/myapp --include '*.log' --include '*.log.*' --out ./out/myapp", 'follow app logs and their rotated names into chunk files'],
      ['pipe tail ./flowlogs --mapper vpcflow --once', 'map the VPC Flow Logs lines there now to stdout, then exit'],
      ['pipe tail /var/log/nginx --start-at end | jq .message', 'only lines written from now on, to another tool'],
    ],
    notes: EXIT_RUN,
  },
  validate: {
    summary: 'Check pipeline files; with --ping, that the source and sink can be reached.',
    description: `Check pipeline files without running them: YAML syntax, component types, every option
against its spec (unknown keys, types, ranges), with the YAML path and line of each problem. With
--ping, also check reachability the way a run would: the S3 bucket can be listed under the prefix,
the CloudWatch log groups exist, the directories can be read (files, tail) or written (jsonl). One
line per component; nothing is read or written.`,
    examples: [
      ['pipe validate pipelines/*.yml', 'check every pipeline file'],
      ['pipe validate --ping pipelines/cloudtrail.yml', 'also check the bucket and the sink directory with the current credentials'],
      ['pipe validate pipelines/ && pipe run pipelines/', 'run only when every file is valid'],
    ],
    notes: `Exit codes:
  0    every file valid (and with --ping, every component reachable)
  2    a problem in some file, or a component that could not be reached`,
  },
  status: {
    summary: 'What is done, failed (and why), skipped, in progress; stream positions and lag; last runs.',
    description: `Summarize a pipeline's state: artifacts by status; the failed ones with their error code,
reason and position (byte, line or row); the skipped ones with their reason; artifacts in progress;
recent row errors; each stream's position with its lag (how far behind now: from a CloudWatch
group's pointer, the delivery time in an S3 mark's key, a tail cursor's last commit); the lock
holder; and the last runs with their duration and counts. Reads the state only.`,
    examples: [
      ['pipe status pipelines/local-cloudtrail.yml', 'the summary, for a person'],
      ['pipe status pipelines/cloudtrail.yml --json | jq \'.positions[] | {stream, lagMs}\'', 'the same content as JSON, for scripts and alerts'],
      ['pipe status pipelines/tail-local.yml --state /var/lib/pipe/state.db', 'a state file other than the one the pipeline names'],
    ],
    notes: `Exit codes:
  0    the summary was printed
  2    usage or configuration error, or no state file yet (the pipeline has not run)`,
  },
  list: {
    summary: 'Every component type with its options, defaults and examples.',
    description: `List every built-in component (sources, loaders, mappers, sinks) with its options, their
types, defaults, examples and descriptions, generated from the same specs that validate pipeline
files (the README's component reference is generated from them too). Give a type or a kind to see
only that.`,
    examples: [
      ['pipe list', 'every component'],
      ['pipe list source', 'only the sources'],
      ['pipe list s3', 'every option of the s3 source'],
    ],
    notes: `Exit codes:
  0    printed
  2    no component or kind of that name`,
  },
};

/** The description as one paragraph: commander wraps it to the terminal's width itself. */
export function descriptionOf(name: CommandName): string {
  return HELP[name].description.replace(/\n/g, ' ');
}

/** The text after the options: examples, aligned, then the notes. */
export function helpAfter(name: CommandName): string {
  const h = HELP[name];
  const lines = ['', 'Examples:'];
  for (const [cmd, what] of h.examples) lines.push(`  ${cmd}`, `      ${what}`);
  if (h.notes) lines.push('', h.notes);
  return lines.join('\n');
}
