/**
 * Which file is which, for the tail source.
 *
 * A file is first known by device + inode, but the inode alone is never trusted: ext4 gives a
 * deleted file's inode to the next file created, and copytruncate keeps the inode while replacing
 * the content. So every cursor also keeps a fingerprint (a hash of the first bytes, up to FP_BYTES,
 * however few the file had, so tiny files are covered) and a check (a hash of up to CHECK_BYTES
 * bytes just before the saved offset). A file resumes at a saved offset only if it is at least that
 * long and both hashes still match; otherwise its content is new and is read from its start.
 *
 * The same hashes find a generation's content again in another file: the copy a copytruncate
 * rotation makes, or the `.gz` a compressing rotation writes (hashed on its decompressed bytes).
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { PipeError } from '../errors.js';
import { ChunkReader } from '../loaders/chunks.js';
import { gunzipMembers } from '../loaders/gzip-decoder.js';

export const FP_BYTES = 1024;
export const CHECK_BYTES = 256;

/** One generation's position, stored under `tail:<id>` and committed with its rows. */
export interface TailCursor {
  v: 1;
  /** Names the generation: its stream key, and with `line` every row's `_id`. */
  id: string;
  /** `_source` of its rows: where pipe first saw this content. */
  uri: string;
  /** Where it was last read (after a rename, the new name). */
  path: string;
  dev: string;
  ino: string;
  /** The content is the decompressed stream of a gzip file. */
  gzip: boolean;
  /** Content offset of the next unread line: committed lines end before it. */
  offset: number;
  /** Lines delivered: the next line's record number (`firstSeq`). */
  line: number;
  fp: string;
  fpLen: number;
  check: string;
  checkLen: number;
  /** Nothing more will be read (a gzip file read to its end). */
  done: boolean;
  /** A finished gzip file's compressed size: the same inode and size need not be decoded again. */
  zsize?: number;
}

export function digest(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/** The last `n` bytes of `a` followed by `b`. */
export function lastBytes(a: Buffer, b: Buffer, n = CHECK_BYTES): Buffer {
  if (b.length >= n) return b.subarray(b.length - n);
  const need = n - b.length;
  return Buffer.concat([a.length > need ? a.subarray(a.length - need) : a, b]);
}

/** What a file holds, as far as identity needs: its first bytes and the bytes before some offsets. */
export interface Probe {
  /** Content bytes (decompressed for gzip) available now. */
  size: number;
  /** False while a gzip file is still being written (its stream ends early). */
  complete: boolean;
  /** The first min(size, FP_BYTES) bytes. */
  head: Buffer;
  /** For each asked offset ≤ size, and for `size` itself: up to CHECK_BYTES bytes before it. */
  before: Map<number, Buffer>;
}

export async function probePlain(fh: FileHandle, size: number, offsets: number[]): Promise<Probe> {
  const head = await pread(fh, 0, Math.min(size, FP_BYTES));
  const before = new Map<number, Buffer>();
  for (const o of [...offsets, size]) {
    if (o <= size && !before.has(o)) before.set(o, await pread(fh, Math.max(0, o - CHECK_BYTES), o));
  }
  return { size, complete: true, head, before };
}

/** The decompressed bytes of a gzip file, read through its descriptor (a rename or delete does not stop it). */
export function gunzipFile(fh: FileHandle, signal: AbortSignal): AsyncGenerator<Buffer, void, undefined> {
  return gunzipMembers(new ChunkReader(fh.createReadStream({ start: 0, autoClose: false, highWaterMark: 256 * 1024 })), signal);
}

/** Decodes a gzip file once, keeping what identity needs. Corrupt data throws. */
export async function probeGzip(fh: FileHandle, offsets: number[], signal: AbortSignal): Promise<Probe> {
  const wanted = [...new Set(offsets)].sort((a, b) => a - b);
  const before = new Map<number, Buffer>();
  let head: Buffer = Buffer.alloc(0);
  let tail: Buffer = Buffer.alloc(0);
  let size = 0;
  let complete = true;
  const decoded = gunzipFile(fh, signal);
  try {
    for await (const chunk of decoded) {
      if (head.length < FP_BYTES) head = Buffer.concat([head, chunk.subarray(0, FP_BYTES - head.length)]);
      while (wanted.length && wanted[0]! <= size + chunk.length) {
        const o = wanted.shift()!;
        before.set(o, lastBytes(tail, chunk.subarray(0, o - size)));
      }
      tail = lastBytes(tail, chunk);
      size += chunk.length;
    }
  } catch (err) {
    if (!(err instanceof PipeError && err.code === 'PIPE_ARTIFACT_TRUNCATED')) throw err;
    complete = false;
  } finally {
    await decoded.return();
  }
  before.set(size, tail);
  return { size, complete, head, before };
}

export type Verdict = 'same' | 'truncated' | 'replaced';

/** Whether a file still holds the content a cursor was saved on, up to its offset. */
export function verify(cur: TailCursor, probe: Probe): Verdict {
  if (probe.size < cur.offset || probe.head.length < cur.fpLen) return 'truncated';
  if (digest(probe.head.subarray(0, cur.fpLen)) !== cur.fp) return 'replaced';
  return checkMatches(probe.before.get(cur.offset), cur.check, cur.checkLen) ? 'same' : 'replaced';
}

/** The check of the bytes before an offset: a hash of the last `checkLen` of them. */
export function checkOf(before: Buffer): { check: string; checkLen: number } {
  return { check: digest(before), checkLen: before.length };
}

function checkMatches(before: Buffer | undefined, check: string, checkLen: number): boolean {
  if (checkLen === 0) return true;
  return before !== undefined && before.length >= checkLen && digest(before.subarray(before.length - checkLen)) === check;
}

/** What a generation remembers to find its content in another file. */
export interface Known {
  cursor: TailCursor;
  /** Its first bytes, when read by this process (not after a restart). */
  head?: Buffer;
  /** Recent (offset, check) pairs at line ends, newest last: to verify a copy that ends before `offset`. */
  checkpoints: Array<{ offset: number; check: string }>;
}

/**
 * Does `probe` start with a generation's content? `prefix` means all of the probed file matches
 * the generation's first bytes but is too short to tell (a copy still being written, an empty file).
 */
export function samePrefix(known: Known, probe: Probe): 'yes' | 'no' | 'prefix' {
  const { fp, fpLen } = known.cursor;
  if (probe.head.length >= fpLen) return digest(probe.head.subarray(0, fpLen)) === fp ? 'yes' : 'no';
  if (!known.head) return probe.complete ? 'no' : 'prefix';
  return known.head.subarray(0, probe.head.length).equals(probe.head) ? 'prefix' : 'no';
}

/**
 * Where a file that holds a copy of a generation's content continues it: the generation's offset
 * when the copy reaches it, or the copy's end when it is a complete copy that stops short (a
 * copytruncate copy taken before lines pipe had already read). Undefined when it is not a copy.
 */
export function continuation(known: Known, probe: Probe): number | undefined {
  const cur = known.cursor;
  if (!probe.complete || samePrefix(known, probe) === 'no') return undefined;
  if (probe.size >= cur.offset) return checkMatches(probe.before.get(cur.offset), cur.check, cur.checkLen) ? cur.offset : undefined;
  // A copy that ends inside what was read: every byte of it must be known content.
  if (probe.size === 0) return undefined;
  const point = [...known.checkpoints].reverse().find((c) => c.offset <= probe.size && c.offset > 0);
  if (point) return checkMatches(probe.before.get(point.offset), point.check, Math.min(point.offset, CHECK_BYTES)) ? probe.size : undefined;
  if (known.head && probe.size <= known.head.length) return probe.size;
  return probe.size >= FP_BYTES && probe.head.length >= cur.fpLen ? probe.size : undefined;
}

/** Offsets a probe must capture to judge `known` generations. */
export function probeOffsets(known: Iterable<Known>): number[] {
  const out: number[] = [];
  for (const k of known) {
    out.push(k.cursor.offset);
    for (const c of k.checkpoints) out.push(c.offset);
  }
  return out;
}

export async function pread(fh: FileHandle, start: number, end: number): Promise<Buffer> {
  const buf = Buffer.alloc(Math.max(0, end - start));
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, start + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === buf.length ? buf : buf.subarray(0, got);
}
