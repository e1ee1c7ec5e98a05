/**
 * Small helpers shared by the loader stages: normalizing what flows between stages into Buffers,
 * and a pull reader over an async iterable that can put bytes back (for sniffing magic bytes and
 * for handing the bytes after a gzip member to the next member).
 */
import { PipeError } from '../errors.js';

const EMPTY = Buffer.alloc(0);

/** Bytes stages accept Buffers, other Uint8Arrays and strings (as UTF-8); anything else is a wiring bug. */
export function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new PipeError('PIPE_INTERNAL', `a bytes stage received ${typeof chunk} instead of bytes`);
}

/** Reads Buffers from an async iterable one at a time, with push-back. `close()` releases the source. */
export class ChunkReader {
  readonly #it: AsyncIterator<unknown>;
  readonly #back: Buffer[] = [];
  #done = false;

  constructor(source: AsyncIterable<unknown>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  /** The next non-empty chunk, or null at the end of the input. */
  async read(): Promise<Buffer | null> {
    const back = this.#back.pop();
    if (back) return back;
    while (!this.#done) {
      const r = await this.#it.next();
      if (r.done) {
        this.#done = true;
        break;
      }
      const b = toBuffer(r.value);
      if (b.length > 0) return b;
    }
    return null;
  }

  /** Puts bytes back; the next `read()` returns them first. */
  unread(chunk: Buffer): void {
    if (chunk.length > 0) this.#back.push(chunk);
  }

  /** At least `n` bytes from the front (fewer only at the end of the input), left unread. */
  async peek(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let size = 0;
    while (size < n) {
      const c = await this.read();
      if (!c) break;
      parts.push(c);
      size += c.length;
    }
    const head = parts.length === 1 ? parts[0]! : parts.length ? Buffer.concat(parts, size) : EMPTY;
    this.unread(head);
    return head;
  }

  /** Ends the upstream iteration early (a no-op when it already ended). */
  async close(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.#it.return?.();
  }
}
