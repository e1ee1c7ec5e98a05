/**
 * One followed file: an open descriptor (so a renamed or deleted file can still be read to its end,
 * and its inode cannot be given to another file meanwhile) and, once its content is known, the
 * generation it feeds (tail-lines.ts). Every read first checks that the bytes just before the read
 * position are still the ones read: a file truncated or rewritten under the cursor is reported, not
 * read from the middle of its new content. Gzip files are decoded from their start and skipped to
 * the cursor; they never grow, so their last line needs no newline.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { PipeError } from '../errors.js';
import { isGzipMagic } from '../loaders/gzip-decoder.js';
import { gunzipFile, pread, probeGzip, probePlain, type Probe } from './tail-identity.js';
import { LineReader, type Generation, type LineOptions, type Slice } from './tail-lines.js';

/** Bytes read from a file per slice: large enough to be cheap, small enough to keep batches small. */
const READ_BYTES = 256 * 1024;

export interface ReadResult {
  slice?: Slice;
  /** More bytes are there to read now. */
  more: boolean;
  /** The content changed under the cursor: the generation no longer lives in this file. */
  change?: 'truncated' | 'replaced';
  /** A gzip file ended early: it is still being written, or it is damaged. */
  incomplete?: boolean;
}

export class TailFile {
  readonly key: string;
  readonly dev: string;
  readonly ino: string;
  path: string;
  gzip = false;
  /** A path still names this file (false once it was renamed away or deleted). */
  attached = true;
  /** When it was last seen to grow, or detached: a detached file is dropped rotateWait after both. */
  lastActivity = Date.now();
  gen: Generation | undefined;
  reader: LineReader | undefined;
  /** Without a generation: since when (or since it last grew), and which live generation it may be a copy of. */
  pending: { since: number; size?: number; copyOf?: string; confirm?: number } | undefined = { since: Date.now() };
  /** Reads that found the content under the cursor unchanged. */
  reads = 0;
  /** Its size when it could not be judged or read to the end (a gzip file still being written, or damaged): retried once it changes. */
  stuckAt = -1;
  #fh: FileHandle | undefined;
  #gz: AsyncGenerator<Buffer, void, undefined> | undefined;
  #gzSkip = 0;

  private constructor(fh: FileHandle, path: string, dev: bigint, ino: bigint) {
    this.#fh = fh;
    this.path = path;
    this.dev = String(dev);
    this.ino = String(ino);
    this.key = `${this.dev}:${this.ino}`;
  }

  /** Opens a regular file; undefined when it vanished or is not one. */
  static async open(path: string): Promise<TailFile | undefined> {
    const fh = await open(path, 'r').catch(() => undefined);
    if (!fh) return undefined;
    const st = await fh.stat({ bigint: true }).catch(() => undefined);
    if (!st?.isFile()) {
      await fh.close().catch(() => undefined);
      return undefined;
    }
    const file = new TailFile(fh, path, st.dev, st.ino);
    file.gzip = isGzipMagic(await pread(fh, 0, 2));
    return file;
  }

  async size(): Promise<number> {
    if (!this.#fh) return 0;
    return Number((await this.#fh.stat()).size);
  }

  /** What identity needs of this file's content, capturing the bytes before `offsets`. */
  async probe(offsets: number[], signal: AbortSignal): Promise<Probe> {
    const size = await this.size();
    if (!this.gzip && size >= 2 && (await pread(this.#fh!, 0, 2)).equals(Buffer.from([0x1f, 0x8b]))) this.gzip = true;
    return this.gzip ? probeGzip(this.#fh!, offsets, signal) : probePlain(this.#fh!, size, offsets);
  }

  bind(gen: Generation, opts: LineOptions, before: Buffer): void {
    const cur = gen.cursor;
    Object.assign(cur, { path: this.path, dev: this.dev, ino: this.ino, gzip: this.gzip });
    this.gen = gen;
    this.reader = new LineReader(gen, opts, before);
    this.pending = undefined;
    this.#stopGzip();
  }

  /** Forgets the generation (it moved on, or the content under it changed). */
  unbind(): void {
    this.gen = undefined;
    this.reader = undefined;
    this.pending = { since: Date.now() };
    this.#stopGzip();
  }

  /** Reads the next slice of lines, checking first that the content under the cursor is unchanged. */
  async read(signal: AbortSignal): Promise<ReadResult> {
    const reader = this.reader;
    if (!reader || !this.#fh) return { more: false };
    if (this.gen?.cursor.done) {
      this.reads++;
      return { more: false };
    }
    if (this.gzip) return this.#readGzip(reader, signal);
    const size = await this.size();
    if (size < reader.readPos) return { more: false, change: 'truncated' };
    if (reader.readPos > 0 && size > reader.readPos) {
      // A copytruncate that already grew past our position is caught by the bytes before it.
      const seen = await pread(this.#fh, reader.readPos - reader.tail.length, reader.readPos);
      if (!seen.equals(reader.tail)) return { more: false, change: 'replaced' };
    }
    this.reads++;
    if (size === reader.readPos) return { more: false };
    const buf = await pread(this.#fh, reader.readPos, Math.min(size, reader.readPos + READ_BYTES));
    this.lastActivity = Date.now();
    const slice = reader.push(buf);
    return { ...(slice ? { slice } : {}), more: reader.readPos < size };
  }

  async #readGzip(reader: LineReader, signal: AbortSignal): Promise<ReadResult> {
    if (!this.#gz) {
      this.#gz = gunzipFile(this.#fh!, signal);
      this.#gzSkip = reader.readPos;
    }
    try {
      for (let next = await this.#gz.next(); !next.done; next = await this.#gz.next()) {
        const skip = Math.min(this.#gzSkip, next.value.length);
        this.#gzSkip -= skip;
        const slice = skip < next.value.length ? reader.push(next.value.subarray(skip)) : undefined;
        if (slice) return { slice, more: true };
      }
    } catch (err) {
      // Read again later from the cursor, when the file has changed: the lines after it are decoded again.
      this.#stopGzip();
      reader.rewind();
      this.stuckAt = await this.size();
      if (err instanceof PipeError && err.code === 'PIPE_ARTIFACT_TRUNCATED') return { more: false, incomplete: true };
      throw err;
    }
    // A gzip file is complete and never grows: its last line needs no newline.
    this.#gz = undefined;
    this.reads++;
    const slice = reader.flush();
    Object.assign(reader.gen.cursor, { done: true, zsize: await this.size() });
    return { slice: slice ?? { records: [], rowErrors: [], firstSeq: reader.gen.cursor.line, bytes: 0 }, more: false };
  }

  #stopGzip(): void {
    this.#gz?.return().catch(() => undefined);
    this.#gz = undefined;
  }

  /** The offset after the last newline (for `startAt: end`): a partial last line is read when completed. */
  async lastLineEnd(size: number): Promise<number> {
    for (let end = size; end > 0; ) {
      const start = Math.max(0, end - 64 * 1024);
      const buf = await pread(this.#fh!, start, end);
      const nl = buf.lastIndexOf(0x0a);
      if (nl >= 0) return start + nl + 1;
      end = start;
    }
    return 0;
  }

  /** Closing is the last thing: while open, its inode cannot be given to another file. */
  async close(): Promise<void> {
    this.#stopGzip();
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(() => undefined);
  }
}
