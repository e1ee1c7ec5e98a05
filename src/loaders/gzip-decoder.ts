/**
 * Gzip decoding (RFC 1952) that knows where every member starts and ends.
 *
 * Node's Gunzip reads multi-member files, but when a member is followed by bytes that are not
 * another member it fails the whole write and drops that write's output (on Node 20, one member
 * plus 9 bytes of garbage in one chunk delivers 0 of its 8000 bytes), and it silently stops at a
 * zero byte whatever follows. So members are walked here: the header is parsed by hand, the
 * deflate body goes through an InflateRaw fed one chunk at a time (its `bytesWritten` tells where
 * the body ended inside the chunk), and the trailer's CRC-32 and length are checked against the
 * output. Every good byte is yielded before an error, and errors carry the compressed offset.
 *
 * After the last member, zero bytes are padding and ignored (as gzip(1) does); anything else is
 * trailing garbage: PIPE_ARTIFACT_CORRUPT, raised after all members were delivered.
 */
import { crc32, createInflateRaw, inflateRawSync, type InflateRaw } from 'node:zlib';
import { PipeError } from '../errors.js';
import type { ChunkReader } from './chunks.js';

const MAX_HEADER_BYTES = 64 * 1024;
const NEED_MORE = -1;
const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;
const FRESERVED = 0xe0;

const corrupt = (message: string, byte: number): PipeError =>
  new PipeError('PIPE_ARTIFACT_CORRUPT', message, { position: { byte } });
const truncated = (message: string, byte: number): PipeError =>
  new PipeError('PIPE_ARTIFACT_TRUNCATED', message, { position: { byte } });

const hex = (b: Buffer): string => [...b.subarray(0, 4)].map((x) => x.toString(16).padStart(2, '0')).join(' ');

/** True when `head` starts with the gzip magic bytes. */
export function isGzipMagic(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** Length of the member header at the start of `b`, NEED_MORE, or why it is not a gzip header. */
export function gzipHeaderLength(b: Buffer): number | string {
  if ((b.length >= 1 && b[0] !== 0x1f) || (b.length >= 2 && b[1] !== 0x8b)) return `no gzip magic (starts with ${hex(b)})`;
  if (b.length < 10) return NEED_MORE;
  if (b[2] !== 8) return `unknown compression method ${b[2]}`;
  const flags = b[3]!;
  if (flags & FRESERVED) return 'reserved header flags are set';
  let p = 10;
  if (flags & FEXTRA) {
    if (b.length < p + 2) return NEED_MORE;
    p += 2 + b.readUInt16LE(p);
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (!(flags & flag)) continue;
    if (p >= b.length) return NEED_MORE;
    const zero = b.indexOf(0, p);
    if (zero < 0) return NEED_MORE;
    p = zero + 1;
  }
  if (flags & FHCRC) p += 2;
  return b.length < p ? NEED_MORE : p;
}

/**
 * Input up to this size (compressed) is decoded in one synchronous call when it is well formed:
 * streaming zlib through small chunks, events and promises costs about twice the inflate itself.
 */
export const IN_MEMORY_MAX_BYTES = 4 * 1024 * 1024;

/** The most decompressed bytes the in-memory path produces; a larger content streams. */
export const IN_MEMORY_MAX_OUTPUT = 32 * 1024 * 1024;

/**
 * The in-memory path: every member of `all` inflated at once, with its header, trailer CRC-32 and
 * length checked and nothing but zero padding after the last member. Anything else (a corrupt or
 * truncated member, trailing garbage, too much output) returns undefined, and the streaming
 * decoder reads the same bytes again: it alone reports errors, so they and the bytes delivered
 * before them do not depend on which path ran.
 */
export function gunzipInMemory(all: Buffer): Buffer[] | undefined {
  const out: Buffer[] = [];
  let total = 0;
  let p = 0;
  while (p < all.length) {
    if (out.length > 0 && all[p] === 0) {
      for (let i = p; i < all.length; i++) if (all[i] !== 0) return undefined;
      break;
    }
    const length = gzipHeaderLength(all.subarray(p));
    if (typeof length !== 'number' || length === NEED_MORE) return undefined;
    let body: Buffer;
    let used: number;
    try {
      const r = inflateRawSync(all.subarray(p + length), { info: true, chunkSize: outputGuess(all, p), maxOutputLength: IN_MEMORY_MAX_OUTPUT - total }) as unknown as {
        buffer: Buffer;
        engine: { bytesWritten: number };
      };
      body = r.buffer;
      used = r.engine.bytesWritten;
    } catch {
      return undefined;
    }
    const end = p + length + used;
    if (end + 8 > all.length) return undefined;
    if (all.readUInt32LE(end) !== crc32(body) || all.readUInt32LE(end + 4) !== body.length % 2 ** 32) return undefined;
    out.push(body);
    total += body.length;
    p = end + 8;
  }
  return out;
}

/**
 * The room to inflate into. zlib fills chunks of this size and joins them at the end (one more
 * copy of the output), so the first member, usually the only one, gets room for its whole output
 * at once: the trailer at the end of the input gives the last member's size, which is the size of
 * a single-member file. Other members, and a size no real compression would give, get 64 KiB.
 */
function outputGuess(all: Buffer, at: number): number {
  const small = 64 * 1024;
  if (at !== 0 || all.length < 18) return small;
  const size = all.readUInt32LE(all.length - 4);
  return size > small && size < all.length * 1032 && size < IN_MEMORY_MAX_OUTPUT ? size + 64 : small;
}

/**
 * Decodes the gzip members read from `reader`, yielding decompressed bytes. Empty input yields
 * nothing; input that does not start with a gzip header is PIPE_ARTIFACT_CORRUPT.
 */
export async function* gunzipMembers(reader: ChunkReader, signal: AbortSignal): AsyncGenerator<Buffer, void, undefined> {
  const all = await reader.peek(IN_MEMORY_MAX_BYTES + 1);
  if (all.length > 0 && all.length <= IN_MEMORY_MAX_BYTES) {
    const members = gunzipInMemory(all);
    if (members) {
      await reader.read();
      for (const m of members) {
        signal.throwIfAborted();
        if (m.length > 0) yield m;
      }
      return;
    }
  }
  yield* gunzipStreaming(reader, signal);
}

async function* gunzipStreaming(reader: ChunkReader, signal: AbortSignal): AsyncGenerator<Buffer, void, undefined> {
  let offset = 0; // compressed bytes consumed by finished headers, bodies and trailers
  for (let member = 1; ; member++) {
    signal.throwIfAborted();
    let head = await reader.read();
    if (!head) return;
    if (member > 1 && head[0] === 0) {
      reader.unread(head);
      await skipPadding(reader, offset);
      return;
    }

    let length = gzipHeaderLength(head);
    while (length === NEED_MORE) {
      if (head.length > MAX_HEADER_BYTES) throw corrupt(`gzip member ${member}: header longer than 64 KiB`, offset);
      const more = await reader.read();
      if (!more) throw truncated(`gzip member ${member}: header is truncated`, offset + head.length);
      head = Buffer.concat([head, more]);
      length = gzipHeaderLength(head);
    }
    if (typeof length === 'string') {
      throw corrupt(member === 1 ? `not gzip data: ${length}` : `trailing garbage after gzip member ${member - 1}: ${length}`, offset);
    }
    offset += length;
    reader.unread(head.subarray(length));

    // The deflate body: feed whole chunks until InflateRaw stops consuming (end of the body).
    const inflater = new Inflater(signal);
    let crc = 0;
    let size = 0;
    try {
      for (;;) {
        const chunk = await reader.read();
        const before = inflater.bytesWritten;
        try {
          for await (const out of inflater.feed(chunk)) {
            crc = crc32(out, crc);
            size += out.length;
            yield out;
            signal.throwIfAborted();
          }
        } catch (err) {
          if (signal.aborted) throw err;
          const reason = err instanceof Error ? err.message : String(err);
          const at = offset + inflater.bytesWritten;
          throw chunk
            ? new PipeError('PIPE_ARTIFACT_CORRUPT', `gzip member ${member}: ${reason}`, { cause: err, position: { byte: at } })
            : new PipeError('PIPE_ARTIFACT_TRUNCATED', `gzip member ${member}: data ends inside the compressed body (${reason})`, { cause: err, position: { byte: at } });
        }
        if (!chunk) break;
        const used = inflater.bytesWritten - before;
        if (used < chunk.length) {
          reader.unread(chunk.subarray(used));
          break;
        }
      }
      offset += inflater.bytesWritten;
    } finally {
      inflater.close();
    }

    const trailer = await take(reader, 8);
    if (trailer.length < 8) throw truncated(`gzip member ${member}: trailer is truncated`, offset + trailer.length);
    if (trailer.readUInt32LE(0) !== crc) throw corrupt(`gzip member ${member}: CRC-32 mismatch`, offset);
    if (trailer.readUInt32LE(4) !== size % 2 ** 32) throw corrupt(`gzip member ${member}: length mismatch`, offset + 4);
    offset += 8;
  }
}

/** Up to `n` bytes from the reader (fewer only at the end of the input). */
async function take(reader: ChunkReader, n: number): Promise<Buffer> {
  const head = await reader.peek(n);
  await reader.read();
  reader.unread(head.subarray(n));
  return head.subarray(0, n);
}

/** Consumes zero padding to the end; a non-zero byte is trailing garbage. */
async function skipPadding(reader: ChunkReader, offset: number): Promise<void> {
  for (let chunk = await reader.read(); chunk; chunk = await reader.read()) {
    const i = chunk.findIndex((x) => x !== 0);
    if (i >= 0) throw corrupt(`trailing garbage after the zero padding that follows the last gzip member`, offset + i);
    offset += chunk.length;
  }
}

/**
 * Drives one InflateRaw, one input chunk at a time: `feed` yields output as it comes (so the
 * stream's own backpressure holds) and returns once zlib has finished with the chunk.
 */
class Inflater {
  readonly #z: InflateRaw = createInflateRaw();
  readonly #signal: AbortSignal;
  #error: Error | null = null;
  #ended = false;
  #wake: (() => void) | null = null;
  readonly #notify = (): void => {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  };
  readonly #onError = (err: Error): void => {
    this.#error = err;
    this.#notify();
  };
  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#notify();
  };

  constructor(signal: AbortSignal) {
    this.#signal = signal;
    this.#z.on('readable', this.#notify);
    this.#z.on('error', this.#onError);
    this.#z.on('end', this.#onEnd);
    signal.addEventListener('abort', this.#notify);
  }

  /** Compressed bytes zlib has consumed so far. */
  get bytesWritten(): number {
    return this.#z.bytesWritten;
  }

  /** Writes `chunk` (or ends the input when null) and yields the output until zlib is done with it. */
  async *feed(chunk: Buffer | null): AsyncGenerator<Buffer, void, undefined> {
    let written = false;
    if (chunk) {
      this.#z.write(chunk, () => {
        written = true;
        this.#notify();
      });
    } else {
      this.#z.end();
    }
    for (;;) {
      let out: Buffer | null;
      while ((out = this.#z.read() as Buffer | null) !== null) yield out;
      if (this.#error) throw this.#error;
      if (chunk ? written : this.#ended) return;
      this.#signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  close(): void {
    this.#signal.removeEventListener('abort', this.#notify);
    this.#z.destroy();
    this.#z.off('readable', this.#notify);
    this.#z.off('error', this.#onError);
    this.#z.off('end', this.#onEnd);
  }
}
