/**
 * One error class for everything `pipe` reports. Callers branch on `code`, never on the message;
 * the codes are part of the user contract (they appear in `pipe status` and in JSON logs).
 * Messages pass through `redactText`, so an error built from a dependency's text (an SDK error
 * echoing an endpoint URL with a password) cannot carry a secret to stderr or the state file.
 */
import { redactText } from './redact.js';

export type ErrorCode =
  | 'PIPE_USAGE'
  | 'PIPE_CONFIG_INVALID'
  | 'PIPE_COMPONENT_LOAD'
  | 'PIPE_LOCKED'
  | 'PIPE_LOCK_LOST'
  | 'PIPE_STATE_CORRUPT'
  | 'PIPE_STATE_MISMATCH'
  /** A shared state store (PostgreSQL) cannot be reached: refused, unknown host, authentication, timeout. */
  | 'PIPE_STATE_UNAVAILABLE'
  | 'PIPE_INTERRUPTED'
  | 'PIPE_ARTIFACT_CORRUPT'
  | 'PIPE_ARTIFACT_TRUNCATED'
  | 'PIPE_ARTIFACT_UNREADABLE'
  | 'PIPE_ARTIFACT_NOT_FOUND'
  | 'PIPE_ARTIFACT_EMPTY'
  | 'PIPE_ROW_INVALID'
  | 'PIPE_LINE_TOO_LONG'
  | 'PIPE_SOURCE_THROTTLED'
  | 'PIPE_SOURCE_FAILED'
  | 'PIPE_SINK_FAILED'
  | 'PIPE_INTERNAL';

/** Where in an artifact something happened: bytes of the raw artifact and/or records read. */
export interface Position {
  byte?: number;
  row?: number;
  line?: number;
}

export class PipeError extends Error {
  readonly code: ErrorCode;
  position?: Position;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; position?: Position } = {}) {
    super(redactText(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PipeError';
    this.code = code;
    if (options.position) this.position = options.position;
  }
}

export function isPipeError(err: unknown): err is PipeError {
  return err instanceof PipeError;
}

/** Wraps anything thrown into a PipeError, keeping a PipeError as it is. */
export function toPipeError(err: unknown, code: ErrorCode, prefix?: string): PipeError {
  if (err instanceof PipeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new PipeError(code, prefix ? `${prefix}: ${message}` : message, { cause: err });
}

/** Text for a position, as users read it in `pipe status` and logs. */
export function formatPosition(p: Position | undefined): string {
  if (!p) return '';
  const parts: string[] = [];
  if (p.row !== undefined) parts.push(`row ${p.row}`);
  if (p.line !== undefined) parts.push(`line ${p.line}`);
  if (p.byte !== undefined) parts.push(`byte ${p.byte}`);
  return parts.join(', ');
}
