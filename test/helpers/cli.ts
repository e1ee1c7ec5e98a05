/** Runs the real `pipe` CLI (bin/pipe.js over dist/) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/pipe.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string;
}

export function spawnCli(args: string[], opts: CliOptions = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export function collect(child: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr })));
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, opts);
  child.stdin!.end(opts.input ?? '');
  return collect(child);
}

/** Every committed row under a jsonl sink directory (temporary files and dead letters left out). */
export function readSink(dir: string): Array<Record<string, unknown>> {
  const rows: Array<Record<string, unknown>> = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) {
        if (name !== '.pipe-tmp' && name !== '_errors') walk(p);
        continue;
      }
      if (!/\.jsonl(\.gz)?$/.test(name)) continue;
      const buf = readFileSync(p);
      const text = name.endsWith('.gz') ? gunzipSync(buf).toString('utf8') : buf.toString('utf8');
      for (const line of text.split('\n')) if (line) rows.push(JSON.parse(line) as Record<string, unknown>);
    }
  };
  try {
    walk(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return rows;
}

/** Counts of each _id: the exactly-once check is that every expected id maps to exactly 1. */
export function idCounts(rows: Array<Record<string, unknown>>): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rows) m.set(String(r._id), (m.get(String(r._id)) ?? 0) + 1);
  return m;
}
