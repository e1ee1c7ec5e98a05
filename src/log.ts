/**
 * `pipe`'s own lines on stderr, as text or JSON. Nothing else may write to stderr: dependency
 * warnings are routed here (and dropped unless --verbose), stack traces only with --verbose.
 * Every line passes through `redactText`: debug lines carry what dependencies say (the AWS SDK's
 * error dumps), which may hold an endpoint's password or a session token.
 */
import { redactText } from './redact.js';
import type { Logger } from './types.js';

export type LogFormat = 'text' | 'json';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface LogOptions {
  format: LogFormat;
  level: LogLevel;
  write?: (line: string) => void;
  /** Called before a line is written, so a progress bar can clear itself. */
  beforeWrite?: () => void;
}

function fieldText(fields: Record<string, unknown> | undefined): string {
  if (!fields) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    parts.push(`${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  }
  return parts.length ? ` (${parts.join(' ')})` : '';
}

export class StderrLogger implements Logger {
  #opts: LogOptions;
  #scope: string | undefined;
  #write: (line: string) => void;

  constructor(opts: LogOptions, scope?: string) {
    this.#opts = opts;
    this.#scope = scope;
    const write = opts.write ?? ((line: string) => process.stderr.write(line));
    this.#write = (line) => write(redactText(line));
  }

  child(scope: string): StderrLogger {
    return new StderrLogger(this.#opts, scope);
  }

  enabled(level: LogLevel): boolean {
    return ORDER[level] >= ORDER[this.#opts.level];
  }

  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (!this.enabled(level)) return;
    this.#opts.beforeWrite?.();
    if (this.#opts.format === 'json') {
      this.#write(JSON.stringify({ time: new Date().toISOString(), level, ...(this.#scope ? { pipeline: this.#scope } : {}), msg: message, ...fields }) + '\n');
    } else {
      const tag = level === 'info' ? '' : `${level}: `;
      this.#write(`pipe: ${this.#scope ? `${this.#scope}: ` : ''}${tag}${message}${fieldText(fields)}\n`);
    }
  }

  /** A machine-readable record (progress, summary): JSON in json mode, the text line otherwise. */
  record(kind: string, text: string, data: Record<string, unknown>): void {
    this.#opts.beforeWrite?.();
    if (this.#opts.format === 'json') {
      this.#write(JSON.stringify({ time: new Date().toISOString(), level: 'info', ...(this.#scope ? { pipeline: this.#scope } : {}), msg: kind, ...data }) + '\n');
    } else {
      this.#write(`pipe: ${this.#scope ? `${this.#scope}: ` : ''}${text}\n`);
    }
  }

  debug(m: string, f?: Record<string, unknown>): void { this.log('debug', m, f); }
  info(m: string, f?: Record<string, unknown>): void { this.log('info', m, f); }
  warn(m: string, f?: Record<string, unknown>): void { this.log('warn', m, f); }
  error(m: string, f?: Record<string, unknown>): void { this.log('error', m, f); }
}

/**
 * Routes Node process warnings (such as the AWS SDK's notice about Node versions) to the debug
 * level instead of letting Node print them to the user's terminal.
 */
export function captureProcessWarnings(log: StderrLogger): void {
  process.removeAllListeners('warning');
  // One line each: the SDK's notice spans several, and every stderr line must start with `pipe:`.
  process.on('warning', (w) => log.debug(`node warning: ${w.name}: ${w.message.replace(/\s+/g, ' ').trim()}`));
}
