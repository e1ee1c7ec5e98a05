/**
 * Generations and their lines. A generation is one run of content: a file from its first byte, or
 * the rest of a rotated file's content found again in its copy. Its cursor stays on the end of the
 * last complete line, so a restart reads a partial last line again from its first byte and
 * completes it; the bytes read past the cursor are held in the line splitter until their newline
 * comes, or the partial line is flushed (the file is done, or `partialLineTimeout` passed).
 */
import { LineSplitter, RAW_PREVIEW_BYTES, type LineEncoding, type LineItem } from '../loaders/line-splitter.js';
import { RowError, type ArtifactRef } from '../types.js';
import { FP_BYTES, checkOf, digest, lastBytes, type Known, type TailCursor } from './tail-identity.js';

/** Recent line ends a generation remembers, to recognise a copy of it that stops short. */
const CHECKPOINTS = 64;

export interface LineOptions {
  maxLineBytes: number;
  maxLineAction: 'truncate' | 'skip';
  encoding: LineEncoding;
}

/** Lines read from a generation, and where they bring it. */
export interface Slice {
  records: unknown[];
  rowErrors: Array<{ index: number; error: RowError }>;
  firstSeq: number;
  bytes: number;
}

export class Generation implements Known {
  readonly cursor: TailCursor;
  head: Buffer | undefined;
  checkpoints: Array<{ offset: number; check: string }> = [];
  readonly ref: ArtifactRef;

  constructor(cursor: TailCursor, head?: Buffer) {
    this.cursor = cursor;
    this.head = head;
    this.ref = { identity: `tail:${cursor.id}`, uri: cursor.uri };
  }

  get stream(): string {
    return `tail:${this.cursor.id}`;
  }

  /** Keeps the first bytes of its (verified) content, and the fingerprint as long as they allow (up to FP_BYTES). */
  adoptHead(head: Buffer): void {
    if (head.length < this.cursor.fpLen || (head.length === this.cursor.fpLen && this.head)) return;
    this.head = Buffer.from(head.subarray(0, FP_BYTES));
    this.cursor.fp = digest(this.head);
    this.cursor.fpLen = this.head.length;
  }
}

/** Splits a generation's content into lines, keeping its cursor on the last complete line. */
export class LineReader {
  readonly gen: Generation;
  /** Content offset of the next byte to read (past the partial line held, if any). */
  readPos: number;
  /** The last CHECK_BYTES content bytes before readPos. */
  tail: Buffer;
  /** The bytes before the cursor's offset, to start again from it. */
  #cursorTail: Buffer;
  #splitter: LineSplitter;
  #opts: LineOptions;

  constructor(gen: Generation, opts: LineOptions, before: Buffer) {
    this.gen = gen;
    this.#opts = opts;
    this.readPos = gen.cursor.offset;
    this.tail = before;
    this.#cursorTail = before;
    this.#splitter = this.#newSplitter();
  }

  /** Forgets what was read past the cursor, to read it again. */
  rewind(): void {
    this.readPos = this.gen.cursor.offset;
    this.tail = this.#cursorTail;
    this.#splitter = this.#newSplitter();
  }

  /** Bytes of a partial line held. */
  get held(): number {
    return this.readPos - this.gen.cursor.offset;
  }

  /** Feeds the content bytes at readPos; returns the lines they complete. */
  push(buf: Buffer): Slice | undefined {
    const cur = this.gen.cursor;
    const start = this.readPos;
    if (this.gen.cursor.fpLen < FP_BYTES && start <= cur.fpLen && start + buf.length > cur.fpLen && this.gen.head) {
      this.gen.adoptHead(Buffer.concat([this.gen.head.subarray(0, start), buf.subarray(0, FP_BYTES - start)]));
    }
    const items: LineItem[] = [];
    this.#splitter.push(buf, items);
    const nl = buf.lastIndexOf(0x0a);
    const before = this.tail;
    this.tail = lastBytes(this.tail, buf);
    this.readPos += buf.length;
    if (nl < 0) return undefined;
    return this.#advance(items, start + nl + 1, lastBytes(before, buf.subarray(0, nl + 1)));
  }

  /** Delivers the partial line held as a line of its own (the file ended, or the timeout passed). */
  flush(): Slice | undefined {
    if (this.held === 0) return undefined;
    const items: LineItem[] = [];
    this.#splitter.end(items);
    this.#splitter = this.#newSplitter();
    return this.#advance(items, this.readPos, this.tail);
  }

  #advance(items: LineItem[], offset: number, before: Buffer): Slice {
    const cur = this.gen.cursor;
    const slice: Slice = { records: [], rowErrors: [], firstSeq: cur.line, bytes: offset - cur.offset };
    for (const item of items) {
      if (typeof item === 'string' || this.#opts.maxLineAction === 'skip') {
        slice.records.push(item);
        continue;
      }
      // Truncate: the splitter kept the first maxLineBytes bytes; the row error keeps a preview.
      slice.rowErrors.push({ index: slice.records.length, error: new RowError(item.code, `${item.message}; kept truncated`, item.raw?.slice(0, RAW_PREVIEW_BYTES)) });
      slice.records.push(item.raw ?? '');
    }
    cur.offset = offset;
    cur.line += items.length;
    Object.assign(cur, checkOf(before));
    this.#cursorTail = before;
    this.gen.checkpoints.push({ offset, check: cur.check });
    if (this.gen.checkpoints.length > CHECKPOINTS) this.gen.checkpoints.shift();
    return slice;
  }

  #newSplitter(): LineSplitter {
    const { maxLineBytes, encoding, maxLineAction } = this.#opts;
    return new LineSplitter({ maxLineBytes, encoding, keepBytes: maxLineAction === 'truncate' ? maxLineBytes : RAW_PREVIEW_BYTES });
  }
}
