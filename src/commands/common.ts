/** What every command shares: finding pipeline files, loading them, opening state stores. */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadPipeline, type PipelineConfig } from '../config/load.js';
import { ConfigError } from '../config/problems.js';
import { makeResolver } from '../config/resolve.js';
import { PipeError } from '../errors.js';
import { lazyBuiltins } from '../builtin-modules.js';
import { PostgresStore } from '../state/postgres.js';
import { SqliteStore } from '../state/sqlite.js';
import type { StateStore } from '../state/store.js';

export const resolver = makeResolver(lazyBuiltins);
export const DEFAULT_STATE = './.pipe/state.db';

/** Pipeline files named on the command line; a directory stands for its *.yml / *.yaml files. */
export async function pipelineFiles(args: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const a of args) {
    const st = await stat(a).catch(() => undefined);
    if (st?.isDirectory()) {
      const names = (await readdir(a)).filter((n) => /\.ya?ml$/.test(n)).sort();
      if (!names.length) throw new PipeError('PIPE_USAGE', `${a}: no pipeline files (*.yml, *.yaml) in this directory`);
      out.push(...names.map((n) => join(a, n)));
    } else {
      out.push(a);
    }
  }
  return out;
}

/** Loads every file; all problems of all files are reported together before any work starts. */
export async function loadPipelines(files: string[]): Promise<PipelineConfig[]> {
  const configs: PipelineConfig[] = [];
  const errors: ConfigError[] = [];
  for (const f of files) {
    try {
      configs.push(await loadPipeline(f, { env: process.env, resolve: resolver }));
    } catch (err) {
      if (err instanceof ConfigError) errors.push(err);
      else throw err;
    }
  }
  if (errors.length) {
    const e = new PipeError('PIPE_CONFIG_INVALID', errors.map((x) => x.message).join('\n'));
    throw e;
  }
  const names = new Map<string, string>();
  for (const c of configs) {
    const other = names.get(c.name);
    if (other) throw new PipeError('PIPE_CONFIG_INVALID', `${c.file}: name: '${c.name}' is also the name of ${other}; two pipelines never share state`);
    names.set(c.name, c.file);
  }
  return configs;
}

/** A PostgreSQL URL names shared state; anything else is a SQLite file. */
export function isStateUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

export function statePath(cfg: PipelineConfig | undefined, override: string | undefined): string {
  const s = override ?? cfg?.state ?? DEFAULT_STATE;
  return isStateUrl(s) ? s : resolve(s);
}

/** One store per state file, shared by the pipelines that use it. */
export class Stores {
  #open = new Map<string, StateStore>();
  readonly host = hostname();

  get(path: string): StateStore {
    let s = this.#open.get(path);
    if (!s) {
      s = isStateUrl(path) ? new PostgresStore(path, this.host) : new SqliteStore(path, this.host);
      this.#open.set(path, s);
    }
    return s;
  }

  async closeAll(): Promise<void> {
    for (const s of this.#open.values()) await s.close().catch(() => undefined);
    this.#open.clear();
  }
}

/**
 * A run id that sorts by time and names chunk files: `20240301T120000Z-1a2b3c4d5e6f`. Random
 * enough that workers started in the same second never share one (their chunks share a directory).
 */
export function newRunId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${t}-${randomBytes(6).toString('hex')}`;
}
