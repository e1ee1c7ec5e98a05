/**
 * Chunk files: rows appended under a temporary name, fsynced, then (after the state commit)
 * renamed to their final name. Shared by every sink that writes files (jsonl now, s3 later).
 */
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { failpoint } from '../failpoint.js';
import type { ChunkFile } from '../state/store.js';

/** Bytes gathered before a write system call: big enough to be cheap, small enough to bound memory. */
const WRITE_BUFFER = 1 << 20;

export class ChunkFileWriter {
  readonly tmp: string;
  readonly final: string;
  rows = 0;
  /** Uncompressed bytes appended. */
  bytes = 0;
  #fh: FileHandle | undefined;
  #parts: string[] = [];
  #pending = 0;
  #gzip: boolean;

  constructor(tmp: string, final: string, gzip: boolean) {
    this.tmp = tmp;
    this.final = final;
    this.#gzip = gzip;
  }

  /** Appends one line (with its newline); returns true when the buffer should be written out. */
  append(line: string, isRow = true): boolean {
    this.#parts.push(line);
    this.#pending += line.length;
    this.bytes += Buffer.byteLength(line);
    if (isRow) this.rows++;
    return this.#pending >= WRITE_BUFFER;
  }

  async writeOut(): Promise<void> {
    if (this.#parts.length === 0) return;
    this.#fh ??= await open(this.tmp, 'w');
    const text = Buffer.from(this.#parts.join(''));
    this.#parts = [];
    this.#pending = 0;
    // Each write is its own gzip member: a multi-member file every gzip reader accepts, with bounded memory.
    await this.#fh.write(this.#gzip ? gzipSync(text) : text);
    failpoint('sink:write');
  }

  /** Writes what is buffered, fsyncs and closes the temporary file. */
  async seal(): Promise<ChunkFile> {
    await this.writeOut();
    this.#fh ??= await open(this.tmp, 'w');
    await this.#fh.sync();
    await this.#fh.close();
    this.#fh = undefined;
    return { tmp: this.tmp, final: this.final, rows: this.rows, bytes: this.bytes };
  }

  async discard(): Promise<void> {
    await this.#fh?.close().catch(() => undefined);
    this.#fh = undefined;
    await rm(this.tmp, { force: true });
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Renames sealed, committed chunk files to their final names and makes the renames durable. */
export async function publishChunkFiles(files: ChunkFile[]): Promise<string[]> {
  const dirs = new Set<string>();
  const missing: string[] = [];
  for (const f of files) {
    await mkdir(dirname(f.final), { recursive: true });
    try {
      await rename(f.tmp, f.final);
      dirs.add(dirname(f.final));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // Already renamed by an earlier attempt, or lost: only the latter is worth a word.
      if (!(await stat(f.final).catch(() => undefined))) missing.push(f.final);
    }
  }
  for (const d of dirs) await fsyncDir(d);
  return missing;
}

/** Removes temporary files no commit recorded (a run killed before its commit). */
export async function discardUnrecorded(tmpDir: string, recorded: Set<string>): Promise<number> {
  let removed = 0;
  for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
    const path = join(tmpDir, name);
    if (recorded.has(path)) continue;
    await rm(path, { force: true });
    removed++;
  }
  return removed;
}
