/**
 * Messages between the main thread and the worker threads that decode artifacts.
 *
 * Flow control runs both ways, so memory stays bounded: the worker asks for raw bytes one chunk at
 * a time (`pull`), and it waits for a `credit` after each batch it posts, which the main thread
 * sends only once that batch is in the sink's queue. A slow sink therefore slows the workers, and
 * the workers slow the downloads.
 */
import { PipeError, type ErrorCode, type Position } from '../errors.js';
import type { ArtifactRef, Batch, ResumePoint } from '../types.js';

export interface WireError {
  code: ErrorCode;
  message: string;
  position?: Position;
}

/** A batch as it crosses threads: no artifact reference (the main thread has it), a plain error. */
export type WireBatch = Omit<Batch, 'artifact' | 'failed' | 'rows'> & { failed?: WireError };

export type ToWorker =
  /** The first message: what to build (a worker may start before the main thread knows). */
  | { t: 'init'; init: WorkerInit }
  /** `at`: the raw bytes sent begin at this stored resume point, not at byte 0. */
  | { t: 'start'; id: number; ref: ArtifactRef; resumeFrom: number; at?: ResumePoint }
  | { t: 'data'; id: number; chunk: Uint8Array }
  | { t: 'end'; id: number }
  | { t: 'error'; id: number; error: WireError }
  | { t: 'abort'; id: number }
  | { t: 'credit'; id: number }
  /** A batch's buffer, written out by the sink: the worker reuses it. */
  | { t: 'recycle'; buffer: ArrayBuffer };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'init-failed'; error: WireError }
  | { t: 'pull'; id: number }
  | { t: 'batch'; id: number; batch: WireBatch }
  | { t: 'finished'; id: number }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; message: string; fields?: Record<string, unknown> };

/** A loader or mapper as a worker thread builds it: its type and its validated options. */
export interface WireComponent {
  type: string;
  path: string;
  line: number;
  options: Record<string, unknown>;
}

export interface WorkerInit {
  /** The pipeline file, for messages. */
  file: string;
  /** The directory module specifiers (`./my-mapper.js#M`) resolve from. */
  baseDir: string;
  /** The loader chain: the pipeline's own, or the first mapper's default. */
  loaders: WireComponent[];
  mappers: WireComponent[];
  partition: 'none' | 'day' | 'hour';
}

export function toWire(err: PipeError): WireError {
  return { code: err.code, message: err.message, ...(err.position ? { position: err.position } : {}) };
}

export function fromWire(e: WireError): PipeError {
  return new PipeError(e.code, e.message, e.position ? { position: e.position } : {});
}
