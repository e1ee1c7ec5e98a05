/**
 * Progress for people and for machines. On a TTY, one redrawn line per pipeline; with
 * `--log-format json`, a JSON progress record every few seconds; otherwise nothing until the summary.
 */
import type { RunStats } from './run.js';

export interface ProgressLine {
  name: string;
  stats: RunStats;
}

/**
 * An integer with thousands separators (1,234,567). Not toLocaleString: its first call loads ICU
 * data, 10 to 20 ms at the end of every run.
 */
export function num(n: number): string {
  const sign = n < 0 ? '-' : '';
  const digits = String(Math.abs(Math.round(n)));
  let out = '';
  for (let i = 0; i < digits.length; i++) {
    if (i > 0 && (digits.length - i) % 3 === 0) out += ',';
    out += digits[i];
  }
  return sign + out;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(1)} ${units[i]}`;
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${Math.round(s % 60)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

/** The facts a progress view shows, computed once for both renderings. */
export function progressFacts(stats: RunStats, now = Date.now()): Record<string, number | boolean | undefined> {
  const elapsed = Math.max(0.001, (now - stats.startedAt) / 1000);
  const toCollect = stats.discovered - stats.unchanged - stats.previouslyFailed;
  const completed = stats.done + stats.failed + (stats.vanished ?? 0);
  const ratio = stats.listingDone && toCollect > 0 ? completed / toCollect : undefined;
  const eta = ratio && ratio > 0 && ratio < 1 ? (elapsed / ratio) * (1 - ratio) : undefined;
  return {
    artifacts_done: stats.done, artifacts_failed: stats.failed, artifacts_total: stats.listingDone ? toCollect : undefined,
    artifacts_in_flight: stats.inFlight, artifacts_unchanged: stats.unchanged, rows: stats.rows, row_errors: stats.rowErrors,
    bytes_in: stats.bytesIn, mb_per_s: stats.bytesIn / 1e6 / elapsed, rows_per_s: stats.rows / elapsed, eta_s: eta,
    elapsed_s: elapsed, ratio,
  };
}

const BAR = 20;

export function renderProgressLine(p: ProgressLine, now = Date.now()): string {
  const f = progressFacts(p.stats, now);
  const ratio = f.ratio as number | undefined;
  const filled = ratio === undefined ? 0 : Math.round(ratio * BAR);
  const bar = ratio === undefined ? '[' + '·'.repeat(BAR) + ']' : '[' + '#'.repeat(filled) + '.'.repeat(BAR - filled) + ']';
  const total = f.artifacts_total === undefined ? '?' : num(f.artifacts_total as number);
  const parts = [
    `${p.name} ${bar} ${num(p.stats.done + p.stats.failed)}/${total} artifacts`,
    `${num(p.stats.rows)} rows`,
    `${(f.mb_per_s as number).toFixed(1)} MB/s`,
  ];
  if (p.stats.failed) parts.push(`${num(p.stats.failed)} failed`);
  if (f.eta_s !== undefined) parts.push(`ETA ${formatSeconds(f.eta_s as number)}`);
  return parts.join('  ');
}

/** Redraws one line per pipeline in place on a terminal. */
export class TtyProgress {
  #lines: ProgressLine[] = [];
  #drawn = 0;
  #timer: NodeJS.Timeout | undefined;
  #write: (s: string) => void;
  #columns: () => number;

  constructor(write: (s: string) => void, columns: () => number = () => process.stderr.columns || 100) {
    this.#write = write;
    this.#columns = columns;
  }

  /** A pipeline's line, drawn at once when the view is running (a short run may end before the next tick). */
  add(line: ProgressLine): void {
    this.#lines.push(line);
    if (this.#timer) this.draw();
  }

  start(intervalMs = 200): void {
    this.draw();
    this.#timer = setInterval(() => this.draw(), intervalMs);
    this.#timer.unref();
  }

  /** Erases the bar so a log line can be printed above it; the next draw puts it back. */
  clear(): void {
    if (!this.#drawn) return;
    this.#write(`\x1b[${this.#drawn}F\x1b[0J`);
    this.#drawn = 0;
  }

  draw(): void {
    this.clear();
    const width = Math.max(20, this.#columns() - 1);
    let out = '';
    for (const l of this.#lines) out += renderProgressLine(l).slice(0, width) + '\n';
    this.#write(out);
    this.#drawn = this.#lines.length;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.clear();
  }
}
