/**
 * The tail source's bookkeeping: which open file feeds which generation (see tail-file.ts), and
 * what happens when files appear, move, shrink or vanish.
 *
 * - A rename keeps the inode: the file is found again under its new name (or, renamed out of the
 *   include globs or deleted, it stays open, "detached") and read to its end; a detached file is
 *   closed once it has not grown for `rotateWait`.
 * - A file that shrinks, or whose bytes before the read position change (copytruncate, truncation,
 *   a rewrite), releases its generation and starts a new one from byte 0.
 * - A file with content nobody follows is matched against released generations first: a file that
 *   holds one's content (the copy copytruncate made, the `.gz` of a rotated file) continues it from
 *   its offset instead of being read again. A file that starts like a generation still followed
 *   elsewhere is held (a copy whose original is about to be truncated) until that generation is
 *   released, or for `rotateWait` while the original is still in place.
 * - Empty files are held until they have content: a copy being written starts empty.
 */
import { stat } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import type { ReadContext, StreamChunk } from '../types.js';
import { TailFile, type ReadResult } from './tail-file.js';
import { Generation, type LineOptions, type Slice } from './tail-lines.js';
import { checkOf, continuation, digest, probeOffsets, samePrefix, type Probe, type TailCursor } from './tail-identity.js';

export interface TrackerOptions {
  startAt: 'beginning' | 'end';
  rotateWait: number;
  partialLineTimeout: number;
  line: LineOptions;
}

/** How a file without a generation is judged: at a first run (startAt applies), normally, or finally (--once). */
export type Mode = 'initial' | 'new' | 'final';

/** The generations a restart looks up; those released (their file gone or changed) with when. */
export interface TailIndex {
  v: 1;
  ids: string[];
  /** Epoch ms each released generation was released at, so its retention spans restarts. */
  released?: Record<string, number>;
}

interface Released {
  gen: Generation;
  at: number;
  /** The file it left: its new content is never taken for a copy of it. */
  from: string;
  /** Its last chunk went out (`last`), so the engine dropped its mapper state already. */
  ended: boolean;
}

export const EMPTY = Buffer.alloc(0);

export class TailTracker {
  readonly files = new Map<string, TailFile>();
  /** Files with bytes to read, in the order they got them. */
  readonly dirty = new Set<TailFile>();
  /** Files without a generation to judge again (they grew, or a generation was released). */
  readonly recheck = new Set<TailFile>();
  /** Chunks that carry only a cursor: a generation moved to another file, or ended. */
  readonly outbox: StreamChunk[] = [];
  /** Cursors to store at once (startAt: end), before any chunk: no rows go with them. */
  readonly direct: TailCursor[] = [];
  indexDirty = false;
  readonly #paths = new Map<string, string>();
  readonly #released = new Map<string, Released>();
  readonly options: TrackerOptions;
  readonly #ctx: ReadContext;
  readonly #retention: number;

  constructor(opts: TrackerOptions, ctx: ReadContext) {
    this.options = opts;
    this.#ctx = ctx;
    this.#retention = Math.max(60_000, 2 * opts.rotateWait);
  }

  /** Generations a restart needs: those followed, and those released recently (their copies may still come). */
  index(): TailIndex {
    const ids = new Set<string>();
    for (const f of this.files.values()) if (f.gen) ids.add(f.gen.cursor.id);
    const released: Record<string, number> = {};
    for (const [id, r] of this.#released) {
      ids.add(id);
      released[id] = r.at;
    }
    return { v: 1, ids: [...ids].sort(), ...(this.#released.size ? { released } : {}) };
  }

  /** Something happened at `path`: find out what, by device and inode. */
  async reconcile(path: string): Promise<void> {
    const st = await stat(path, { bigint: true }).catch(() => undefined);
    const prev = this.#paths.get(path);
    if (!st?.isFile()) {
      if (prev) this.#detach(path, prev);
      return;
    }
    const key = `${st.dev}:${st.ino}`;
    if (prev && prev !== key) this.#detach(path, prev);
    const known = this.files.get(key);
    if (known) {
      if (known.path !== path) this.#ctx.log.info(`tail: rotation seen: ${known.path} is now ${path}`);
      if (known.path !== path && this.#paths.get(known.path) === key) this.#paths.delete(known.path);
      known.path = path;
      known.attached = true;
      if (known.gen) known.gen.cursor.path = path;
      this.#paths.set(path, key);
      if (known.gen) this.dirty.add(known);
      else this.recheck.add(known);
      return;
    }
    const file = await TailFile.open(path);
    if (!file) return;
    if (file.key !== key || this.files.has(file.key)) {
      // Replaced again between the stat and the open: the next event tells.
      await file.close();
      return;
    }
    this.track(file);
    await this.evaluate(file, 'new');
  }

  /** Decides what a file without a generation holds: a released generation's content, a copy to wait on, or new content. */
  async evaluate(file: TailFile, mode: Mode): Promise<void> {
    this.recheck.delete(file);
    if (file.gen || !this.files.has(file.key)) return;
    const size = await file.size().catch(() => 0);
    if (size === 0 || size === file.stuckAt) return;
    const now = Date.now();
    let probe: Probe;
    let released: Released[];
    try {
      // The first bytes first; the bytes before offsets only of generations that start the same way.
      probe = await file.probe([], this.#ctx.signal);
      released = [...this.#released.values()]
        .filter((r) => r.from !== file.key && probe.complete && samePrefix(r.gen, probe) !== 'no').sort((a, b) => b.at - a.at);
      if (released.length) probe = await file.probe(probeOffsets(released.map((r) => r.gen)), this.#ctx.signal);
    } catch (err) {
      this.unreadable(file, err);
      file.stuckAt = size;
      return;
    }
    if (!probe.complete) {
      // A gzip file still being written: judged once it has changed.
      file.stuckAt = size;
      return;
    }
    for (const r of released) {
      const offset = continuation(r.gen, probe);
      if (offset === undefined) continue;
      this.#released.delete(r.gen.cursor.id);
      this.#ctx.log.debug(`tail: ${file.path} continues ${r.gen.cursor.path} at byte ${offset}`, { id: r.gen.cursor.id, line: r.gen.cursor.line });
      this.#bind(file, r.gen, offset, probe);
      this.outbox.push(this.chunk(r.gen));
      return;
    }
    const live = [...this.files.values()].filter((f) => f.gen && f !== file).map((f) => f.gen!);
    const original = mode === 'final' ? undefined : live.find((g) => samePrefix(g, probe) !== 'no');
    if (original) {
      if (file.pending?.copyOf !== original.cursor.id) {
        this.#ctx.log.debug(`tail: ${file.path} holds a copy of ${original.cursor.path}: waiting for that one to be rotated`, { id: original.cursor.id });
        file.pending = { since: now, copyOf: original.cursor.id };
      }
      return;
    }
    let offset = 0;
    if (mode === 'initial' && this.options.startAt === 'end') offset = file.gzip ? probe.size : await file.lastLineEnd(size);
    const gen = new Generation(this.#newCursor(file, probe), probe.head);
    const before = probe.before.get(offset) ?? (await file.probe([offset], this.#ctx.signal)).before.get(offset)!;
    if (offset > 0) {
      Object.assign(gen.cursor, { offset, done: file.gzip, ...(file.gzip ? { zsize: size } : {}) }, checkOf(before));
      this.direct.push({ ...gen.cursor });
    }
    this.#ctx.log.debug(`tail: ${file.path}: new content from byte ${offset}`, { id: gen.cursor.id, mode });
    this.#bind(file, gen, offset, probe, before);
    this.indexDirty = true;
  }

  /** The file's content is no longer the generation's (truncated, replaced): a new one starts. */
  async contentChanged(file: TailFile, change: 'truncated' | 'replaced'): Promise<void> {
    const gen = file.gen!;
    this.#ctx.log.info(`tail: ${file.path} was ${change === 'truncated' ? 'truncated' : 'rewritten'}: reading its new content from the start`, { lines: gen.cursor.line });
    file.unbind();
    this.release(gen, file.key);
    await this.evaluate(file, 'new');
  }

  /** Reads one slice from a file; undefined when it had nothing complete. */
  async read(file: TailFile): Promise<StreamChunk | undefined> {
    if (!file.gen) return undefined;
    let res: ReadResult;
    try {
      res = await file.read(this.#ctx.signal);
    } catch (err) {
      this.unreadable(file, err);
      return undefined;
    }
    if (res.change) {
      await this.contentChanged(file, res.change);
      return undefined;
    }
    if (res.more) this.dirty.add(file);
    return res.slice ? this.chunk(file.gen, res.slice) : undefined;
  }

  /** Forgets released generations after their retention; returns when the next one is due. */
  expireReleased(now: number): number {
    let next = Infinity;
    for (const [id, r] of this.#released) {
      const due = r.at + this.#retention;
      if (due > now) next = Math.min(next, due);
      else {
        this.#released.delete(id);
        this.indexDirty = true;
        // No copy of it came: the engine may drop what it keeps for it. The chunk carries no
        // cursor: the generation has left the index, and its cursor is deleted with it.
        if (!r.ended) this.outbox.push({ ref: r.gen.ref, records: [], firstSeq: r.gen.cursor.line, last: true });
      }
    }
    return next;
  }

  /** A detached file done with: its partial last line delivered, its generation released, closed. */
  async drop(file: TailFile): Promise<void> {
    const gen = file.gen;
    this.#ctx.log.debug(`tail: closing ${file.path} (renamed away or deleted, read to its end)`, { id: gen?.cursor.id });
    if (gen) {
      const slice = file.reader!.flush();
      this.outbox.push(this.chunk(gen, slice, true));
      file.unbind();
      this.release(gen, file.key, true);
    }
    this.files.delete(file.key);
    this.dirty.delete(file);
    this.recheck.delete(file);
    if (this.#paths.get(file.path) === file.key) this.#paths.delete(file.path);
    await file.close();
    this.indexDirty = true;
  }

  chunk(gen: Generation, slice?: Slice, last = false): StreamChunk {
    const s = slice ?? { records: [], rowErrors: [], firstSeq: gen.cursor.line, bytes: 0 };
    return {
      ref: gen.ref, records: s.records, firstSeq: s.firstSeq, bytes: s.bytes,
      cursor: { stream: gen.stream, value: { ...gen.cursor } },
      ...(s.rowErrors.length ? { rowErrors: s.rowErrors } : {}),
      ...(last ? { last } : {}),
    };
  }

  async close(): Promise<void> {
    for (const f of this.files.values()) await f.close();
    this.files.clear();
  }

  /** Follows an opened file; a file that had its path before is detached. */
  track(file: TailFile): void {
    this.files.set(file.key, file);
    const prev = this.#paths.get(file.path);
    if (prev && prev !== file.key) this.#detach(file.path, prev);
    this.#paths.set(file.path, file.key);
  }

  #detach(path: string, key: string): void {
    this.#paths.delete(path);
    const file = this.files.get(key);
    if (!file || file.path !== path) return;
    file.attached = false;
    file.lastActivity = Date.now();
    // Whatever it still holds is read; it is closed rotateWait after it stops growing.
    if (file.gen) this.dirty.add(file);
  }

  /** Reports a file that cannot be read (unless it merely vanished). */
  unreadable(file: TailFile, err: unknown): void {
    if (this.#ctx.signal.aborted) return;
    const e = err as NodeJS.ErrnoException & { code?: string };
    // A file that vanished between its event and this read is no news: its unlink comes next.
    if (e.code === 'ENOENT') return;
    this.#ctx.log.warn(`tail: cannot read ${file.path}: ${e.message}`, { code: e.code });
  }

  /** Remembers a generation that left file `from`, for its copies; files waiting are judged again. */
  release(gen: Generation, from: string, ended = false, at = Date.now()): void {
    this.#released.set(gen.cursor.id, { gen, at, from, ended });
    for (const f of this.files.values()) if (!f.gen) this.recheck.add(f);
    this.indexDirty = true;
  }

  #bind(file: TailFile, gen: Generation, offset: number, probe: Probe, before?: Buffer): void {
    const at = before ?? probe.before.get(offset) ?? EMPTY;
    if (offset !== gen.cursor.offset) {
      // A copy that ends before the offset: everything in it was delivered already.
      gen.cursor.offset = offset;
      Object.assign(gen.cursor, checkOf(at));
    }
    gen.adoptHead(probe.head);
    file.bind(gen, this.options.line, at);
    this.dirty.add(file);
  }

  #newCursor(file: TailFile, probe: Probe): TailCursor {
    const id = `${BigInt(file.ino).toString(36)}-${Date.now().toString(36)}${Math.floor(Math.random() * 0x10000).toString(16).padStart(4, '0')}`;
    return {
      v: 1, id, uri: pathToFileURL(file.path).href, path: file.path, dev: file.dev, ino: file.ino, gzip: file.gzip,
      offset: 0, line: 0, fp: digest(probe.head), fpLen: probe.head.length, check: '', checkLen: 0, done: false,
    };
  }
}
