/**
 * An S3 object's body that survives its connection. Bytes stream straight through (never buffered
 * whole, with the consumer's backpressure); when the body fails mid-way (a reset connection, a
 * socket that went idle past the timeout, a body that ends short of the listed size) it is resumed
 * after a backoff with a ranged GET from the first byte not yet delivered, pinned to the listed ETag
 * (If-Match), so the consumer sees one unbroken byte stream of one version of the object. A run
 * resuming a half-read object starts it at `start` (its first GET already ranged) the same way.
 *
 * Each failure without progress counts an attempt; a body that keeps delivering bytes between
 * failures keeps going. After `maxAttempts` failures in a row the error is thrown with its byte.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { PipeError } from '../errors.js';
import type { Logger } from '../types.js';

export interface ResumableOptions {
  uri: string;
  /** Size from the listing: a body ending before it was cut short. */
  size: number;
  /** The byte `first` begins at (a run resuming mid-object opened it with a ranged GET), default 0. */
  start?: number;
  maxAttempts: number;
  /** A body with no byte for this long is abandoned and resumed, ms. */
  idleTimeout: number;
  /** Opens the body from `offset` (a ranged GET pinned to the listed ETag). */
  open(offset: number, signal: AbortSignal): Promise<Readable>;
  signal: AbortSignal;
  log: Logger;
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'ENOTFOUND', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);

/** Whether a body error is the connection's fault (resume) rather than the content's (fail). */
export function isTransientBodyError(err: unknown): boolean {
  if (err instanceof PipeError) return false;
  const e = err as { code?: string; name?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && NETWORK_CODES.has(e.code)) return true;
  if (e.name === 'TimeoutError' || e.name === 'BodyCutShort' || e.name === 'BodyIdle') return true;
  return /^(aborted|socket hang up|premature close)$/i.test(e.message ?? '');
}

/** Full-jitter exponential backoff: a random delay up to 200 ms × 2^(n-1), capped at 10 s. */
export function jitterBackoff(attempt: number): number {
  return Math.random() * Math.min(10_000, 200 * 2 ** (attempt - 1));
}

function named(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

/** Next chunk of `it`, or a BodyIdle error when none comes within `ms`. */
async function nextWithin(it: AsyncIterator<Buffer>, ms: number): Promise<IteratorResult<Buffer>> {
  let timer: NodeJS.Timeout | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(named('BodyIdle', `no data for ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([it.next(), idle]);
  } finally {
    clearTimeout(timer);
  }
}

async function* resumingChunks(first: Readable, o: ResumableOptions): AsyncGenerator<Buffer> {
  let body: Readable | undefined = first;
  let offset = o.start ?? 0;
  let failures = 0;
  try {
    for (;;) {
      try {
        // A reopen that fails is final: the SDK has already retried it (throttling, 5xx, network).
        body ??= await o.open(offset, o.signal).catch((e: unknown) => {
          if (e instanceof PipeError) e.position ??= { byte: offset };
          throw e;
        });
        const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        for (;;) {
          const r = await nextWithin(it, o.idleTimeout);
          if (r.done) break;
          offset += r.value.length;
          failures = 0;
          yield r.value;
        }
        if (offset < o.size) throw named('BodyCutShort', `body ended at byte ${offset} of ${o.size}`);
        return;
      } catch (err) {
        body?.destroy();
        body = undefined;
        if (o.signal.aborted || err instanceof PipeError) throw err;
        if (!isTransientBodyError(err) || ++failures >= o.maxAttempts) {
          throw new PipeError('PIPE_ARTIFACT_UNREADABLE',
            `${o.uri}: reading failed at byte ${offset} of ${o.size}: ${(err as Error).message}${failures >= o.maxAttempts ? ` (${failures} attempts)` : ''}`,
            { cause: err, position: { byte: offset } });
        }
        // A broken body resumed is a notable event; several in a row are a storm.
        o.log[failures >= 3 ? 'warn' : 'info'](`${failures >= 3 ? 'retry storm: ' : ''}resuming ${o.uri} at byte ${offset} after: ${(err as Error).message}`, { attempt: failures });
        await sleep(jitterBackoff(failures), undefined, { signal: o.signal });
      }
    }
  } finally {
    body?.destroy();
  }
}

/**
 * The body as one Readable. A failure to reopen (the object deleted or replaced meanwhile, access
 * revoked) ends it with that error and the byte reached.
 */
export function resumableBody(first: Readable, opts: ResumableOptions): Readable {
  return Readable.from(resumingChunks(first, opts), { objectMode: false, highWaterMark: 64 * 1024 });
}
