/**
 * Splits bytes into lines: the pure core of the `lines` and `jsonl` loaders, usable without
 * streams (and in batches: `push` appends every line a chunk completes to an array).
 *
 * Lines end at `\n`; one `\r` before it is stripped, so CRLF files read like LF files. A final
 * line without a newline is still a line; a file ending in `\n` has no empty last line. Empty lines
 * in the middle are lines ("" records), so line numbers match what `wc -l` and editors show. A UTF-8
 * byte-order mark at the very start is dropped. Invalid UTF-8 becomes U+FFFD (Node's decoder), never
 * an error: a log line is kept even when a few bytes in it are not text.
 *
 * Splitting is on bytes (0x0A never occurs inside a UTF-8 sequence), and each run of complete
 * lines in a chunk is decoded with one `toString` and one `split`, faster than decoding line by
 * line (about 12 M lines/s before any per-record cost). A line longer than `maxLineBytes` is never
 * held whole: past the limit only its first 200 bytes are kept, and it comes out as a RowError in
 * its place, so the record count (and every later record's position) stays the same.
 *
 * `boundary` is the count of input bytes up to the end of the last line given out (after its `\n`,
 * or every byte once `end` gave a final line): where a reader could start again and see the next
 * line first. It costs one addition per chunk, since `push` finds the chunk's last `\n` anyway.
 */
import { RowError } from '../types.js';

export type LineEncoding = 'utf8' | 'latin1';
export type LineItem = string | RowError;

export interface LineSplitterOptions {
  maxLineBytes: number;
  encoding?: LineEncoding;
  /**
   * Bytes of an over-long line kept as its RowError's `raw` (default RAW_PREVIEW_BYTES). The tail
   * source keeps `maxLineBytes` of them to deliver such a line truncated instead of dropping it.
   */
  keepBytes?: number;
}

/** Bytes of an over-long line kept as the RowError's `raw`. */
export const RAW_PREVIEW_BYTES = 200;

const LF = 0x0a;
const CR = 0x0d;
/**
 * Lines decoded together. A whole artifact can arrive as one chunk (an inflated gzip file): decoding
 * each line on its own then made one string per line, all alive until the chunk's rows were mapped.
 */
const SPAN_BYTES = 1024 * 1024;

export class LineSplitter {
  readonly #max: number;
  readonly #encoding: LineEncoding;
  readonly #keep: number;
  /** Pieces of the line in progress (at most max + 1 bytes: the +1 is a `\r` before a `\n` to come). */
  #parts: Buffer[] = [];
  #partBytes = 0;
  /** Length so far of an over-long line in progress, or -1; its first bytes are in #head. */
  #overflow = -1;
  #head: Buffer = Buffer.alloc(0);
  #lastByte = -1;
  #first = true;
  #total = 0;
  #boundary = 0;

  constructor(options: LineSplitterOptions) {
    this.#max = options.maxLineBytes;
    this.#encoding = options.encoding ?? 'utf8';
    this.#keep = options.keepBytes ?? RAW_PREVIEW_BYTES;
  }

  /** Appends to `out` every line that `chunk` completes. */
  push(chunk: Buffer, out: LineItem[]): void {
    if (chunk.length === 0) return;
    const before = this.#total;
    this.#total += chunk.length;
    let start = 0;
    if (this.#partBytes > 0 || this.#overflow >= 0) {
      const nl = chunk.indexOf(LF);
      if (nl < 0) return this.#append(chunk);
      this.#finish(chunk.subarray(0, nl), out);
      start = nl + 1;
    }
    const last = chunk.lastIndexOf(LF);
    if (last >= 0) this.#boundary = before + last + 1;
    if (last >= start) {
      this.#splitLines(chunk, start, last, out);
      start = last + 1;
    }
    if (start < chunk.length) this.#append(chunk.subarray(start));
  }

  /** Appends the final line (one without a newline), if any. */
  end(out: LineItem[]): void {
    if (this.#partBytes > 0 || this.#overflow >= 0) this.#finish(Buffer.alloc(0), out);
    this.#boundary = this.#total;
  }

  /** Input bytes up to the end of the last line given out (see the top of the file). */
  get boundary(): number {
    return this.#boundary;
  }

  /**
   * The complete lines of chunk[start, last) (`last` is a newline), in spans of up to SPAN_BYTES
   * that end at a newline: one `toString` and `split` each, whose lines are slices of one string.
   * No line inside a span shorter than the limit can be over it, so only longer spans are split
   * line by line (each line decoded on its own, and checked).
   */
  #splitLines(chunk: Buffer, start: number, last: number, out: LineItem[]): void {
    for (let s = start; s <= last; ) {
      let e = last - s <= SPAN_BYTES ? last : chunk.lastIndexOf(LF, s + SPAN_BYTES);
      if (e < s) e = chunk.indexOf(LF, s);
      if (e - s <= this.#max) this.#splitSpan(chunk, s, e, out);
      else this.#splitEach(chunk, s, e, out);
      s = e + 1;
    }
  }

  #splitSpan(chunk: Buffer, start: number, end: number, out: LineItem[]): void {
    const lines = chunk.toString(this.#encoding, start, end).split('\n');
    if (this.#first) lines[0] = this.#firstLine(lines[0]!);
    for (const line of lines) out.push(line.charCodeAt(line.length - 1) === CR ? line.slice(0, -1) : line);
  }

  #splitEach(chunk: Buffer, start: number, end: number, out: LineItem[]): void {
    for (let s = start; s <= end; ) {
      const nl = chunk.indexOf(LF, s);
      this.#emit(chunk.subarray(s, nl), out);
      s = nl + 1;
    }
  }

  /** A complete line's bytes (without its `\n`) → a string or, past the limit, a RowError. */
  #emit(bytes: Buffer, out: LineItem[]): void {
    const length = bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.length - 1 : bytes.length;
    if (length > this.#max) {
      this.#first = false;
      out.push(tooLong(length, this.#max, bytes.subarray(0, Math.min(length, this.#keep)), this.#encoding));
      return;
    }
    const line = bytes.toString(this.#encoding, 0, length);
    out.push(this.#first ? this.#firstLine(line) : line);
  }

  #append(piece: Buffer): void {
    this.#lastByte = piece[piece.length - 1]!;
    if (this.#overflow >= 0) {
      this.#overflow += piece.length;
      if (this.#head.length < this.#keep) {
        this.#head = Buffer.concat([this.#head, piece.subarray(0, this.#keep - this.#head.length)]);
      }
      return;
    }
    if (this.#partBytes + piece.length > this.#max + 1) {
      // Over the limit: keep a copy of the first bytes only, then count.
      const all = Buffer.concat([...this.#parts, piece.subarray(0, this.#keep)]);
      this.#head = Buffer.from(all.subarray(0, this.#keep));
      this.#overflow = this.#partBytes + piece.length;
      this.#parts = [];
      this.#partBytes = 0;
      return;
    }
    // Copy small pieces so a kept tail does not pin its whole (possibly large) source chunk.
    this.#parts.push(piece.length < 4096 ? Buffer.from(piece) : piece);
    this.#partBytes += piece.length;
  }

  /** Completes the line in progress with `tail` (the bytes before the `\n`). */
  #finish(tail: Buffer, out: LineItem[]): void {
    if (this.#overflow >= 0) {
      const last = tail.length > 0 ? tail[tail.length - 1] : this.#lastByte;
      const length = this.#overflow + tail.length - (last === CR ? 1 : 0);
      const head = this.#head.length < this.#keep ? Buffer.concat([this.#head, tail]) : this.#head;
      this.#first = false;
      out.push(tooLong(length, this.#max, head.subarray(0, Math.min(length, this.#keep)), this.#encoding));
      this.#overflow = -1;
      this.#head = Buffer.alloc(0);
    } else {
      const parts = this.#parts;
      if (tail.length > 0) parts.push(tail);
      this.#emit(parts.length === 1 ? parts[0]! : Buffer.concat(parts), out);
      this.#parts = [];
      this.#partBytes = 0;
    }
    this.#lastByte = -1;
  }

  #firstLine(line: string): string {
    this.#first = false;
    return line.charCodeAt(0) === 0xfeff ? line.slice(1) : line;
  }
}

function tooLong(length: number, max: number, head: Buffer, encoding: LineEncoding): RowError {
  return new RowError('PIPE_LINE_TOO_LONG', `line of ${length} bytes is longer than maxLineBytes (${max})`, head.toString(encoding));
}
