/**
 * The `files` source: one pass over a local directory. An artifact's identity is its path, size,
 * mtime and a fingerprint of its first and last bytes, so a changed file is collected again and an
 * unchanged one never. A run resuming a half-read file opens it at the stored byte (`start`).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import picomatch from 'picomatch';
import { PipeError } from '../errors.js';
import { pingReadable } from '../ping.js';
import type { ComponentSpec } from '../spec.js';
import type { Artifact, ArtifactSource, ListContext } from '../types.js';

export const spec: ComponentSpec = {
  kind: 'source',
  type: 'files',
  summary: 'Every file under a local directory, once (recursive, include/exclude globs).',
  options: {
    path: { type: 'string', required: true, example: './fixtures/cloudtrail', description: 'Directory to read (or a single file).' },
    include: { type: 'strings', default: ['**/*'], example: ['**/*.json.gz'], description: 'Globs of relative paths to collect.' },
    exclude: { type: 'strings', default: [], example: ['**/CloudTrail-Digest/**'], description: 'Globs of relative paths to leave out.' },
    concurrency: { type: 'integer', default: 4, min: 1, max: 256, description: 'Files read at once.' },
  },
  ping: (o) => pingReadable(o.path as string, 'PIPE_SOURCE_FAILED'),
};

export interface FilesOptions {
  path: string;
  include: string[];
  exclude: string[];
  concurrency: number;
}

const FINGERPRINT_BYTES = 4096;

/** sha256 of the first and last 4 KiB: cheap, and tells apart files of equal size and mtime. */
async function fingerprint(path: string, size: number): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const h = createHash('sha256');
    const head = Buffer.alloc(Math.min(size, FINGERPRINT_BYTES));
    await fh.read(head, 0, head.length, 0);
    h.update(head);
    if (size > FINGERPRINT_BYTES) {
      const tail = Buffer.alloc(Math.min(size - FINGERPRINT_BYTES, FINGERPRINT_BYTES));
      await fh.read(tail, 0, tail.length, size - tail.length);
      h.update(tail);
    }
    return h.digest('hex').slice(0, 16);
  } finally {
    await fh.close();
  }
}

async function* walk(dir: string): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.isFile()) yield p;
  }
}

export class FilesSource implements ArtifactSource {
  readonly kind = 'artifacts';
  readonly concurrency: number;
  #root: string;
  #include: (path: string) => boolean;
  #exclude: (path: string) => boolean;

  constructor(opts: FilesOptions) {
    // Relative paths are relative to the working directory, like the sink's `dir` and `state`.
    this.#root = resolve(opts.path);
    this.#include = picomatch(opts.include, { dot: true });
    this.#exclude = opts.exclude.length ? picomatch(opts.exclude, { dot: true }) : () => false;
    this.concurrency = opts.concurrency;
  }

  async *list(ctx: ListContext): AsyncGenerator<Artifact> {
    const rootStat = await stat(this.#root).catch((err: NodeJS.ErrnoException) => {
      throw new PipeError('PIPE_SOURCE_FAILED', `files source: cannot read ${this.#root}: ${err.code ?? err.message}`, { cause: err });
    });
    const paths = rootStat.isDirectory() ? walk(this.#root) : (async function* (p) { yield p; })(this.#root);
    const { prefix, from, to } = ctx.scope;
    for await (const path of paths) {
      if (ctx.signal.aborted) return;
      const rel = rootStat.isDirectory() ? relative(this.#root, path).split(sep).join('/') : path;
      if (rootStat.isDirectory() && (!this.#include(rel) || this.#exclude(rel))) continue;
      if (prefix && !rel.startsWith(prefix)) continue;
      const st = await stat(path).catch(() => undefined);
      if (!st) continue; // vanished since the directory was read
      if ((from && st.mtime < from) || (to && st.mtime >= to)) continue;
      const fp = await fingerprint(path, st.size).catch(() => 'unreadable');
      yield {
        identity: `file:${path}:${st.size}:${Math.trunc(st.mtimeMs)}:${fp}`,
        uri: pathToFileURL(path).href,
        size: st.size,
        mtime: st.mtime,
        seekable: true,
        open: async ({ signal, start }) => {
          // Reads of up to 1 MiB: most log files arrive in one piece (one message to a worker).
          const highWaterMark = Math.min(1024 * 1024, Math.max(64 * 1024, st.size + 1));
          const stream = createReadStream(path, { signal, highWaterMark, ...(start ? { start } : {}) });
          await new Promise<void>((res, rej) => {
            stream.once('open', () => { stream.off('error', rej); res(); });
            stream.once('error', rej);
          }).catch((err: NodeJS.ErrnoException) => {
            throw new PipeError(err.code === 'ENOENT' ? 'PIPE_ARTIFACT_NOT_FOUND' : 'PIPE_ARTIFACT_UNREADABLE',
              `cannot open ${path}: ${err.code ?? err.message}`, { cause: err });
          });
          return stream;
        },
      };
    }
  }
}

export function create(options: Record<string, unknown>): ArtifactSource {
  return new FilesSource(options as unknown as FilesOptions);
}
