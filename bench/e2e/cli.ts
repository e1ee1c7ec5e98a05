/** Runs the real CLI as the user would and measures wall time, CPU time and peak RSS (all threads). */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin/pipe.js');
const PROBE = join(ROOT, 'bench/e2e/rss-probe.mjs');

export interface CliRun {
  seconds: number;
  /** CPU time of every thread of the process (user + system). */
  cpuSeconds: number;
  peakRssMb: number;
  code: number | null;
  stderr: string;
}

export function runPipe(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runNode(BIN, args, env);
}

/** A Node script as its own process (the CLI, or a bare baseline script), measured like the CLI. */
export function runNode(script: string, args: string[], env: Record<string, string> = {}): Promise<CliRun & { stdout: string }> {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, ['--import', PROBE, script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  let rss = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (d: string) => (rss += d));
  return new Promise((res) => child.on('close', (code) => {
    const [maxRss = '0', cpu = '0'] = rss.trim().split(' ');
    res({ code, stdout, stderr, seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: Number(cpu) / 1e6, peakRssMb: Math.round(Number(maxRss) / 1024) });
  }));
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

/** Runs a command (an external baseline such as jq or mlr) through the shell; its wall and CPU time. */
export function runShell(script: string, args: string[]): Promise<{ seconds: number; cpuSeconds: number; code: number | null; stderr: string }> {
  const t0 = process.hrtime.bigint();
  // The shell reports the CPU time of its children (the whole pipeline) with `times`.
  const child = spawn('/bin/bash', ['-c', `${script}\ntimes >&3`, 'bench', ...args], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let times = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (d: string) => (times += d));
  return new Promise((res) => child.on('close', (code) => {
    // `times`: the shell's user/system, then its children's: "0m1.234s 0m0.100s".
    const line = times.trim().split('\n').pop() ?? '';
    const cpu = [...line.matchAll(/(\d+)m([\d.]+)s/g)].reduce((s, m) => s + Number(m[1]) * 60 + Number(m[2]), 0);
    res({ code, stderr, seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: cpu });
  }));
}

/** Whether a command is on the PATH. */
export function hasCommand(name: string): boolean {
  return spawnSync('/bin/sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}
