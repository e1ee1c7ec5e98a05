/**
 * The `tail` source: follows a local directory. New files are picked up, appends followed, and
 * rotation by rename or by copytruncate, truncation and deletion handled, through restarts.
 *
 * chokidar reports that something happened at a path; plain reads on open descriptors fetch the
 * bytes (tail-file.ts); the tracker (tail-tracker.ts) decides by device, inode and content hashes
 * (tail-identity.ts) which generation of content each file holds. Every generation's cursor (its
 * identity, path, byte offset after the last complete line, line number and the hash of the bytes
 * before that offset) is stored under `tail:<id>` in the same transaction as the rows it covers; a
 * small index under `tail` lists the generations a restart must look up.
 */
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PipeError } from '../errors.js';
import { pingReadable } from '../ping.js';
import type { LineEncoding } from '../loaders/line-splitter.js';
import type { ComponentSpec } from '../spec.js';
import type { ReadContext, StreamChunk, StreamSource } from '../types.js';
import { TailFile } from './tail-file.js';
import { verify, type TailCursor } from './tail-identity.js';
import { resume } from './tail-resume.js';
import { timedWork } from './tail-timers.js';
import { TailTracker, type TailIndex } from './tail-tracker.js';
import { DirWatcher, listFiles, pathMatcher } from './tail-watch.js';

export const spec: ComponentSpec = {
  kind: 'source',
  type: 'tail',
  summary: 'Follows a local log directory: new files, appends, rotation (rename, copytruncate, gzip), truncation; exactly once through restarts.',
  options: {
    path: { type: 'string', required: true, example: '/var/log/myapp', description: 'Directory to follow. A single file may be named: then only that name is followed (a rename is still read to its end, but not a copytruncate copy).' },
    include: { type: 'strings', default: ['**/*'], example: ['**/*.log', '**/*.log.*'], description: 'Globs of relative paths to follow. Include rotated names (app.log.1, app.log.2.gz) so lines still unread at a rotation are read from them.' },
    exclude: { type: 'strings', default: [], example: ['**/*.tmp'], description: 'Globs of relative paths to leave out.' },
    startAt: { type: 'enum', values: ['beginning', 'end'], default: 'beginning', example: 'end', description: 'Where to start in the files present at the pipeline\'s first run; files that appear later are always read from their start.' },
    maxLineBytes: { type: 'size', default: '1MiB', min: 1, example: '256KiB', description: 'Longest line delivered whole, in bytes without the line ending; a longer one is a PIPE_LINE_TOO_LONG row error and the file goes on.' },
    maxLineAction: { type: 'enum', values: ['truncate', 'skip'], default: 'truncate', example: 'skip', description: 'What an over-long line becomes: its first maxLineBytes bytes (truncate), or nothing but the row error (skip).' },
    partialLineTimeout: { type: 'duration', default: '5s', example: '10s', description: 'A last line without its newline is delivered on its own after the file was quiet this long (0: wait for the newline).' },
    rotateWait: { type: 'duration', default: '5s', min: 1, example: '30s', description: 'How long a file renamed out of the globs or deleted stays open after it last grew, and how long a copy is held for copytruncate.' },
    pollInterval: { type: 'duration', default: '1s', min: 10, example: '250ms', description: 'How often every followed file is also checked with stat, for changes the file system did not report.' },
    encoding: { type: 'enum', values: ['utf8', 'latin1'], default: 'utf8', example: 'latin1', description: 'Text encoding of the lines; with utf8, invalid bytes become U+FFFD.' },
  },
  ping: (o) => pingReadable(o.path as string, 'PIPE_SOURCE_FAILED'),
};

export interface TailOptions {
  path: string;
  include: string[];
  exclude: string[];
  startAt: 'beginning' | 'end';
  maxLineBytes: number;
  maxLineAction: 'truncate' | 'skip';
  partialLineTimeout: number;
  rotateWait: number;
  pollInterval: number;
  encoding: LineEncoding;
}

/** Where the index of generations is stored; each generation's cursor is under `tail:<id>`. */
export const INDEX_STREAM = 'tail';

export class TailSource implements StreamSource {
  readonly kind = 'streams';
  readonly #opts: TailOptions;

  constructor(opts: TailOptions) {
    this.#opts = opts;
  }

  async *read(ctx: ReadContext): AsyncGenerator<StreamChunk> {
    const opts = this.#opts;
    const { root, match } = await this.#root();
    const tracker = new TailTracker({
      startAt: opts.startAt, rotateWait: opts.rotateWait, partialLineTimeout: opts.partialLineTimeout,
      line: { maxLineBytes: opts.maxLineBytes, maxLineAction: opts.maxLineAction, encoding: opts.encoding },
    }, ctx);
    const hints = new Set<string>();
    let wake: (() => void) | undefined;
    const poke = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const hint = (path: string): void => {
      hints.add(path);
      poke();
    };
    ctx.signal.addEventListener('abort', poke);
    // One file that cannot be read never stops the others: what went wrong is logged, the rest goes on.
    const guard = async <T>(what: string, work: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await work();
      } catch (err) {
        if (!ctx.signal.aborted) ctx.log.warn(`tail: ${what}: ${(err as Error).message}`);
        return undefined;
      }
    };
    let saved = new Set<string>();
    const watcher = ctx.once ? undefined : new DirWatcher(root, match, hint, (err) => ctx.log.warn(`tail: watching ${root}: ${err.message}`));
    try {
      await watcher?.start();
      const index = (await ctx.position(INDEX_STREAM)) as TailIndex | undefined;
      await dropUnlisted(ctx, index);
      await resume(tracker, await listFiles(root, match), await storedCursors(ctx, index), index === undefined, ctx.signal, index?.released ?? {});
      // Generations released long enough ago (in an earlier run) leave the index now, even in one pass.
      tracker.expireReleased(Date.now());
      saved = new Set(index?.ids);
      let nextTick = Date.now() + opts.pollInterval;
      for (;;) {
        if (ctx.signal.aborted) return;
        for (const path of [...hints]) {
          hints.delete(path);
          await guard(path, () => tracker.reconcile(path));
        }
        for (const file of [...tracker.recheck]) await guard(file.path, () => tracker.evaluate(file, 'new'));
        if (!ctx.once && Date.now() >= nextTick) {
          nextTick = (await guard('checking files', () => timedWork(tracker, Date.now(), opts.pollInterval, hint))) ?? Date.now() + opts.pollInterval;
        }
        saved = await this.#save(tracker, ctx, saved);
        let chunk = tracker.outbox.shift();
        const file = chunk ? undefined : tracker.dirty.values().next().value;
        if (file) {
          tracker.dirty.delete(file);
          chunk = await guard(file.path, () => tracker.read(file));
          saved = await this.#save(tracker, ctx, saved);
        }
        if (chunk) yield chunk;
        if (chunk || file || hints.size || tracker.recheck.size) continue;
        if (ctx.once) {
          // One pass: copies still held are decided now, then the pass ends.
          const held = [...tracker.files.values()].filter((f) => !f.gen && f.pending?.copyOf);
          for (const f of held) await guard(f.path, () => tracker.evaluate(f, 'final'));
          if (tracker.dirty.size || tracker.outbox.length) continue;
          return;
        }
        await new Promise<void>((res) => {
          const timer = setTimeout(res, Math.max(0, nextTick - Date.now()));
          wake = () => {
            clearTimeout(timer);
            res();
          };
          if (ctx.signal.aborted || hints.size) poke();
        });
      }
    } finally {
      ctx.signal.removeEventListener('abort', poke);
      await watcher?.close().catch(() => undefined);
      await tracker.close();
    }
  }

  /** `--dry-run`: each file, and where its stored cursor says reading would start. Nothing is stored. */
  async *dryRun(ctx: ReadContext): AsyncGenerator<{ uri: string; size: number; state: string }> {
    const { root, match } = await this.#root();
    const stored = await storedCursors(ctx);
    for (const path of await listFiles(root, match)) {
      const file = await TailFile.open(path);
      if (!file) continue;
      try {
        const size = await file.size();
        const mine = stored.filter((c) => `${c.dev}:${c.ino}` === file.key);
        const probe = mine.length ? await file.probe(mine.map((c) => c.offset), ctx.signal) : undefined;
        const same = probe && mine.find((c) => verify(c, probe) === 'same');
        const state = same ? (same.done ? 'read to its end' : `from byte ${same.offset}, line ${same.line}`) : mine.length ? 'changed: from its start' : 'new';
        yield { uri: pathToFileURL(path).href, size, state };
      } finally {
        await file.close();
      }
    }
  }

  /** The directory watched and the paths followed in it (a single file: that name only). */
  async #root(): Promise<{ root: string; match: (path: string) => boolean }> {
    const path = resolve(this.#opts.path);
    const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
      throw new PipeError('PIPE_SOURCE_FAILED', `tail source: cannot read ${path}: ${err.code ?? err.message}`, { cause: err });
    });
    if (st.isDirectory()) return { root: path, match: pathMatcher(path, this.#opts.include, this.#opts.exclude) };
    return { root: dirname(path), match: (p) => p === path };
  }

  /**
   * Direct cursors first (startAt: end), then the index, before any chunk of a new generation; then
   * the cursors of generations `saved` (the index stored before) listed and this one does not.
   * Returns the ids the stored index lists.
   */
  async #save(tracker: TailTracker, ctx: ReadContext, saved: Set<string>): Promise<Set<string>> {
    for (const c of tracker.direct.splice(0)) await ctx.savePosition(`tail:${c.id}`, c);
    if (!tracker.indexDirty) return saved;
    tracker.indexDirty = false;
    const index = tracker.index();
    await ctx.savePosition(INDEX_STREAM, index);
    const now = new Set(index.ids);
    for (const id of saved) if (!now.has(id)) await ctx.savePosition(`tail:${id}`, undefined);
    return now;
  }
}

/**
 * Removes stored cursors the index does not list: a restart never looks them up. A generation's
 * cursor goes when it leaves the index (#save); this catches a run stopped between the two writes,
 * and a chunk of the generation still in the sink when its cursor went.
 */
async function dropUnlisted(ctx: ReadContext, index: TailIndex | undefined): Promise<void> {
  if (!ctx.positionStreams) return;
  const listed = new Set(index?.ids.map((id) => `tail:${id}`));
  for (const stream of await ctx.positionStreams('tail:')) if (!listed.has(stream)) await ctx.savePosition(stream, undefined);
}

/** The cursors of the generations the index lists. */
async function storedCursors(ctx: ReadContext, index?: TailIndex): Promise<TailCursor[]> {
  index ??= (await ctx.position(INDEX_STREAM)) as TailIndex | undefined;
  const stored: TailCursor[] = [];
  for (const id of index?.ids ?? []) {
    const c = (await ctx.position(`tail:${id}`)) as TailCursor | undefined;
    if (c?.v === 1) stored.push(c);
  }
  return stored;
}

export function create(options: Record<string, unknown>): StreamSource {
  return new TailSource(options as unknown as TailOptions);
}
