/**
 * Finding the files the tail source follows: a directory walk at start, then chokidar's events.
 * Events are only hints ("something happened at this path"): the tracker stats the path and decides
 * by device and inode what happened, because one rename can arrive as unlink + add, as add before
 * unlink, or as a change, depending on timing and platform.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import picomatch from 'picomatch';

/** Include/exclude globs over paths relative to the root (`/`-separated on every platform). */
export function pathMatcher(root: string, include: string[], exclude: string[]): (path: string) => boolean {
  const inc = picomatch(include, { dot: true });
  const exc = exclude.length ? picomatch(exclude, { dot: true }) : () => false;
  return (path) => {
    const rel = relative(root, path).split(sep).join('/');
    return rel !== '' && !rel.startsWith('../') && inc(rel) && !exc(rel);
  };
}

/** Every file under `root` that `match` accepts, sorted. */
export async function listFiles(root: string, match: (path: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    // A directory reached twice through links (a loop) is walked once.
    const real = await realpath(dir).catch(() => dir);
    if (seen.has(real)) return;
    seen.add(real);
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(dir, e.name);
      // Symbolic links are followed, as chokidar follows them.
      const kind = e.isSymbolicLink() ? await stat(p).catch(() => undefined) : e;
      if (kind?.isDirectory()) await walk(p);
      else if (kind?.isFile() && match(p)) out.push(p);
    }
  };
  await walk(root);
  return out;
}

/** chokidar over the root: every add, change and unlink of a matching file is reported as a path. */
export class DirWatcher {
  #watcher: FSWatcher | undefined;
  readonly #root: string;
  readonly #match: (path: string) => boolean;
  readonly #onPath: (path: string) => void;
  readonly #onError: (err: Error) => void;

  constructor(root: string, match: (path: string) => boolean, onPath: (path: string) => void, onError: (err: Error) => void) {
    this.#root = root;
    this.#match = match;
    this.#onPath = onPath;
    this.#onError = onError;
  }

  /** Resolves once chokidar watches everything (files created from then on are reported). */
  async start(): Promise<void> {
    const w = watch(this.#root, {
      ignoreInitial: true,
      // Raw events, at once: the tracker recognises renames itself (atomic would delay unlinks 100 ms).
      atomic: false,
      ignored: (path, stats) => stats?.isFile() === true && !this.#match(path),
    });
    this.#watcher = w;
    const report = (path: string): void => {
      if (this.#match(path)) this.#onPath(path);
    };
    w.on('add', report).on('change', report).on('unlink', report);
    // chokidar drops a file's change events that come within 50 ms of the previous one; its raw
    // events (every fs.watch event, unthrottled) keep an append from waiting for the next poll.
    w.on('raw', (_event, name, details) => {
      const watched = (details as { watchedPath?: string } | undefined)?.watchedPath;
      if (!watched || !name) return;
      report(basename(watched) === name ? watched : join(watched, name));
    });
    w.on('error', (err) => this.#onError(err instanceof Error ? err : new Error(String(err))));
    await new Promise<void>((resolve) => w.once('ready', resolve));
  }

  async close(): Promise<void> {
    await this.#watcher?.close();
    this.#watcher = undefined;
  }
}
