/**
 * Chunk files: rows appended under a temporary name, fsynced, then (after the state commit)
 * renamed to their final name; and the housekeeping of a sink's temporary files. Used by the jsonl
 * sink, and by the s3 sink for the files it spools before uploading them.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PipeError } from '../errors.js';
import { failpoint } from '../failpoint.js';
import type { ChunkFile } from '../state/store.js';

/**
 * A pipeline name used as a directory name (`.pipe-tmp/<pipeline>/`): config validation allows only
 * letters, digits, '.', '_' and '-', never '.' or '..'; this keeps a name from code (not from a
 * validated file) from reaching outside the sink too.
 */
export function checkPipelineDirName(name: string): void {
  if (/^[A-Za-z0-9._-]{1,128}$/.test(name) && name !== '.' && name !== '..') return;
  throw new PipeError('PIPE_CONFIG_INVALID', `pipeline name '${name.slice(0, 60)}' cannot name a directory: expected letters, digits, '.', '_' or '-' (not '.' or '..')`);
}

/** Bytes gathered before a write system call: big enough to be cheap, small enough to bound memory. */
const WRITE_BUFFER = 1 << 20;

export class ChunkFileWriter {
  readonly tmp: string;
  readonly final: string;
  rows = 0;
  /** Uncompressed bytes appended. */
  bytes = 0;
  #fh: FileHandle | undefined;
  #parts: Uint8Array[] = [];
  #releases: Array<() => void> = [];
  #pending = 0;
  #gzip: boolean;

  constructor(tmp: string, final: string, gzip: boolean) {
    this.tmp = tmp;
    this.final = final;
    this.#gzip = gzip;
  }

  /** Appends JSON lines (each with its newline) holding `rows` rows; true when the buffer should be written out. */
  append(text: string | Uint8Array, rows: number, release?: () => void): boolean {
    // Text is encoded once, here; bytes (from serializeRows, or a worker) are kept as they are.
    const bytes = typeof text === 'string' ? Buffer.from(text) : text;
    this.#parts.push(bytes);
    if (release) this.#releases.push(release);
    const size = bytes.byteLength;
    this.#pending += size;
    this.bytes += size;
    this.rows += rows;
    return this.#pending >= WRITE_BUFFER;
  }

  async writeOut(): Promise<void> {
    if (this.#parts.length === 0) return;
    this.#fh ??= await open(this.tmp, 'w');
    const parts = this.#parts;
    const size = this.#pending;
    const releases = this.#releases;
    this.#parts = [];
    this.#releases = [];
    this.#pending = 0;
    // Each write is its own gzip member: a multi-member file every gzip reader accepts, with bounded memory.
    if (this.#gzip) await writeAll(this.#fh, gzipSync(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)), this.tmp);
    else await writeAllParts(this.#fh, parts, size, this.tmp);
    // Written: the bytes may be reused (a failed write keeps them, for the garbage collector).
    for (const r of releases) r();
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

/**
 * write(2) may write less than asked (a disk filling up does that without an error): keep writing
 * the rest, and call a write that makes no progress what it is, so no short file is ever committed.
 */
async function writeAll(fh: FileHandle, data: Uint8Array, path: string): Promise<void> {
  let offset = 0;
  while (offset < data.byteLength) {
    const { bytesWritten } = await fh.write(data, offset, data.byteLength - offset);
    if (bytesWritten <= 0) {
      throw Object.assign(new Error(`ENOSPC: no space left on device, write ${path}`), { code: 'ENOSPC' });
    }
    offset += bytesWritten;
  }
}

/** The parts in order, gathered by one writev(2) (no copy into one buffer) unless it comes up short. */
async function writeAllParts(fh: FileHandle, parts: Uint8Array[], size: number, path: string): Promise<void> {
  if (parts.length === 1) return writeAll(fh, parts[0]!, path);
  const { bytesWritten } = await fh.writev(parts);
  if (bytesWritten >= size) return;
  // Short: the rest, from where it stopped, through writeAll's checks.
  await writeAll(fh, Buffer.concat(parts, size).subarray(bytesWritten), path);
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * `mkdir -p` that fails with the real reason. Node's recursive mkdir reports ENOENT when a missing
 * level cannot be created on a read-only file system; creating the first missing level alone
 * surfaces EROFS (or EACCES, ENOSPC) instead.
 */
export async function makeDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (err) {
    let missing = path;
    for (let up = dirname(missing); up !== missing && !(await stat(up).catch(() => undefined)); up = dirname(missing)) missing = up;
    const real = await mkdir(missing).then(() => undefined, (e: NodeJS.ErrnoException) => (e.code === 'EEXIST' ? undefined : e));
    throw real ?? err;
  }
}

/** A file system failure of a sink, as the PipeError users see: the sink named, no stack. */
export function sinkFailure(kind: string, dir: string, err: unknown): PipeError {
  if (err instanceof PipeError) return err;
  return new PipeError('PIPE_SINK_FAILED', `${kind} sink ${dir}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** Renames sealed, committed chunk files to their final names and makes the renames durable. */
export async function publishChunkFiles(files: ChunkFile[]): Promise<string[]> {
  const dirs = new Set<string>();
  const missing: string[] = [];
  for (const f of files) {
    await makeDir(dirname(f.final));
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

/**
 * The run directories under `tmpDir`, read BEFORE the live runs are: a run directory is made after
 * its run registered, so one listed here whose run is not live afterwards belongs to a run that is
 * gone. Read after, it could be a run that registered since and is writing its first chunk.
 */
export async function runDirs(tmpDir: string): Promise<string[]> {
  return (await readdir(tmpDir).catch(() => [])).sort();
}

/**
 * Removes temporary files no commit recorded (a run killed before its commit): the run directories
 * `listed` (by runDirs, before `live` was read) of every run not in `live`, after their recorded
 * chunks were rolled forward.
 */
export async function discardUnrecorded(tmpDir: string, listed: string[], live: Set<string>): Promise<number> {
  let removed = 0;
  for (const name of listed) {
    if (live.has(name)) continue;
    const path = join(tmpDir, name);
    const entry = await stat(path).catch(() => undefined);
    if (!entry) continue;
    removed += entry.isDirectory() ? (await readdir(path).catch(() => [])).length : 1;
    await rm(path, { force: true, recursive: true });
  }
  return removed;
}

/**
 * A sink directory remembers which state file its chunks were committed with. A run whose state
 * file is not that one (deleted, replaced, a wrong --state) has no record of what was delivered and
 * would collect everything again, duplicating every row: it is refused unless the user says so.
 */
export async function checkSinkOwner(ownerFile: string, pipeline: string, stateId: string, statePath: string, accept: boolean): Promise<void> {
  const text = await readFile(ownerFile, 'utf8').catch(() => undefined);
  const owner = text ? (JSON.parse(text) as { stateId: string; state: string }) : undefined;
  if (owner && owner.stateId !== stateId && !accept) {
    throw new PipeError('PIPE_STATE_MISMATCH',
      `sink ${dirname(dirname(ownerFile))} holds rows of pipeline ${pipeline} committed with another state file `
      + `(${owner.state}, id ${owner.stateId}); ${statePath} has no record of them, so this run would collect everything again `
      + 'and duplicate every row. Restore that state file, point --state at it, or pass --accept-new-state to start over on purpose');
  }
  if (owner?.stateId !== stateId) {
    await mkdir(dirname(ownerFile), { recursive: true });
    // Written aside and renamed: workers starting together may read it while another writes it.
    const aside = `${ownerFile}.${process.pid}-${randomBytes(4).toString('hex')}`;
    await writeFile(aside, JSON.stringify({ pipeline, stateId, state: statePath }) + '\n');
    await rename(aside, ownerFile);
  }
}
