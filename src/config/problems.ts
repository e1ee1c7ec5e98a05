import { PipeError } from '../errors.js';
import { redactText } from '../redact.js';

/**
 * One thing wrong with a pipeline file. `path` is the YAML path (`source.bucket`,
 * `mappers[1].where`; empty for the document as a whole) and `line` is 1-based (0 when the file
 * could not be read at all).
 */
export interface ConfigProblem {
  path: string;
  line: number;
  message: string;
}

/**
 * `<file>:<line>: <path>: <message>`, leaving out the parts a problem does not have. Messages quote
 * values, so they are redacted: `endpoint: expected a URL …, got 'ftp://user:***@host'`.
 */
export function formatProblem(file: string, p: ConfigProblem): string {
  const where = p.line > 0 ? `${file}:${p.line}` : file;
  const message = redactText(p.message);
  return p.path ? `${where}: ${p.path}: ${message}` : `${where}: ${message}`;
}

/** Problems in reading order: by line, then in the order they were found. */
export function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => a.p.line - b.p.line || a.i - b.i)
    .map(({ p }) => p);
}

/**
 * Every problem in one pipeline file, reported together so a user fixes them in one pass.
 * The message is one formatted problem per line; `pipe validate` prints it as it is.
 */
export class ConfigError extends PipeError {
  readonly file: string;
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: readonly ConfigProblem[], options: { cause?: unknown } = {}) {
    const sorted = sortProblems(problems);
    super('PIPE_CONFIG_INVALID', sorted.map((p) => formatProblem(file, p)).join('\n'), options);
    this.name = 'ConfigError';
    this.file = file;
    this.problems = sorted;
  }
}

/** Names close to a misspelt one, for "did you mean" hints (edit distance of at most 2). */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
