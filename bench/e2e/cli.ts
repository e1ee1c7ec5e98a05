/** Runs the real CLI as the user would and measures wall time and peak RSS (all threads). */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin/pipe.js');
const PROBE = join(ROOT, 'bench/e2e/rss-probe.mjs');

export interface CliRun {
  seconds: number;
  peakRssMb: number;
  code: number | null;
  stderr: string;
}

export function runPipe(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, ['--import', PROBE, BIN, ...args], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  let rss = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (d: string) => (rss += d));
  return new Promise((res) => child.on('close', (code) => res({
    code, stderr, seconds: Number(process.hrtime.bigint() - t0) / 1e9, peakRssMb: Math.round(Number(rss.trim() || 0) / 1024),
  })));
}

/** A fresh pipeline file and output directory under `work` for one measured run. */
export function pipelineFile(work: string, label: string, source: string, mappers: string, sink = ''): string {
  const name = label.replace(/[^A-Za-z0-9._-]+/g, '-');
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'pipeline.yml');
  writeFileSync(file, `name: ${name}\nstate: ${join(dir, 'state.db')}\nsource: ${source}\nmappers: ${mappers}\nsink: ${sink || `{ type: jsonl, dir: ${join(dir, 'out')} }`}\n`);
  return file;
}
