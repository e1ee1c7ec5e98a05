/**
 * The tail source against Debian's real logrotate, through the real CLI: a writer appends
 * thousands of numbered lines per second while logrotate rotates the directory (create and
 * copytruncate modes, with compress + delaycompress, so .gz files of already-read content appear
 * too). The files on disk afterwards are the truth: every line in them — every line that was in a
 * file when it was rotated — must be in the sink exactly once.
 *
 * copytruncate loses the lines written between logrotate's copy and its truncate: they are in
 * neither file. Those are counted and their window measured (from the neighbouring lines' write
 * times); the sink may hold some of them (read before the truncate) and must miss nothing else.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { collect, readSink, spawnCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from './tail-helpers.js';

const LOGROTATE = ['/usr/sbin/logrotate', '/sbin/logrotate', '/usr/bin/logrotate'].find((p) => existsSync(p));
const WRITER = join(import.meta.dirname, 'tail-writer.mjs');
const RATE = 4000;
// More rotations for a longer soak: TAIL_ROTATIONS=20 npx vitest run test/sources/tail-logrotate.test.ts
const ROTATIONS = Number(process.env.TAIL_ROTATIONS ?? 5);

interface Writer {
  pid: number;
  stop(): Promise<{ lines: number; reopened: number }>;
}

async function startWriter(file: string, rate: number): Promise<Writer> {
  const child = spawn(process.execPath, [WRITER, file, String(rate)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  await waitFor('writer ready', () => out, (o) => o.includes('ready'));
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  return {
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      return JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as { lines: number; reopened: number };
    },
  };
}

function logrotate(conf: string, state: string): Promise<void> {
  return new Promise((res, rej) => {
    const child = spawn(LOGROTATE!, ['-f', '-s', state, conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('exit', (code) => (code === 0 ? res() : rej(new Error(`logrotate exited ${code}: ${err}`))));
  });
}

/** Line number → write time (ms), for every `line <n> <t>` in the given texts. */
function parseLines(texts: Iterable<string>, into = new Map<number, number[]>()): Map<number, number[]> {
  for (const text of texts) {
    for (const l of text.split('\n')) {
      const m = /^line (\d+) ([\d.]+)$/.exec(l);
      if (m) into.set(Number(m[1]), [...(into.get(Number(m[1])) ?? []), Number(m[2])]);
    }
  }
  return into;
}

function diskTexts(logs: string): string[] {
  return readdirSync(logs).map((n) => {
    const buf = readFileSync(join(logs, n));
    return (n.endsWith('.gz') ? gunzipSync(buf) : buf).toString('utf8');
  });
}

describe('tail under real logrotate', () => {
  it('has logrotate to run (apt-get install -y logrotate; .ci/run installs it)', () => {
    expect(LOGROTATE, 'logrotate is not installed').toBeDefined();
  });

  it.each(['create', 'copytruncate'] as const)('%s: every line that was in a file when it was rotated appears exactly once', async (mode) => {
    const dir = tempDir();
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    writeFileSync(join(logs, 'app.log'), '');
    const yml = join(dir, 'p.yml');
    writeFileSync(yml, `name: rot
state: ${join(dir, 'state.db')}
source: { type: tail, path: ${logs}, include: ["app.log*"], rotateWait: 500ms, pollInterval: 200ms }
sink: { type: jsonl, dir: ${join(dir, 'out')}, flushInterval: 100ms }
`);
    const pipe = spawnCli(['run', yml, '--no-progress', '--verbose']);
    const piped = collect(pipe);
    const writer = await startWriter(join(logs, 'app.log'), RATE);
    const conf = join(dir, 'logrotate.conf');
    writeFileSync(conf, `${logs}/app.log {
  rotate 100
  ${mode}
  compress
  delaycompress
  missingok
${mode === 'create' ? `  postrotate\n    kill -HUP ${writer.pid}\n  endscript\n` : ''}}
`);
    for (let i = 0; i < ROTATIONS; i++) {
      await new Promise((r) => setTimeout(r, 350));
      await logrotate(conf, join(dir, 'logrotate.state'));
    }
    await new Promise((r) => setTimeout(r, 300));
    const written = await writer.stop();
    const disk = parseLines(diskTexts(logs));
    expect(readdirSync(logs).filter((n) => n.endsWith('.gz')).length).toBe(ROTATIONS - 1);
    // Every line on disk once: logrotate itself never duplicates.
    expect([...disk.values()].filter((t) => t.length > 1)).toEqual([]);
    const sinkNumbers = (): Map<number, number[]> => parseLines(readSink(join(dir, 'out')).map((r) => String(r.message)));
    const unread = (): number[] => {
      const sink = sinkNumbers();
      return [...disk.keys()].filter((n) => !sink.has(n));
    };
    await waitFor('every line on disk in the sink', unread, (missing) => missing.length === 0, 15_000).catch(async (err: Error) => {
      pipe.kill('SIGINT');
      throw new Error(`${err.message}\n${(await piped).stderr}`);
    });
    pipe.kill('SIGINT');
    const r = await piped;
    expect(r.code, r.stderr).toBe(130);

    const sink = sinkNumbers();
    // With the --verbose log of what the source decided, should this ever fail.
    expect([...sink].filter(([, t]) => t.length > 1).map(([n]) => n), r.stderr.slice(-8000)).toEqual([]);
    expect([...sink.keys()].filter((n) => n >= written.lines)).toEqual([]);
    expect([...disk.keys()].filter((n) => !sink.has(n))).toEqual([]);
    const lostOnDisk = Array.from({ length: written.lines }, (_, n) => n).filter((n) => !disk.has(n));
    if (mode === 'create') {
      expect(written.reopened).toBe(ROTATIONS);
      expect(lostOnDisk).toEqual([]);
      expect(sink.size).toBe(written.lines);
      return;
    }
    // copytruncate: only lines of the copy→truncate windows may be missing, and only if not read in time.
    const missing = lostOnDisk.filter((n) => !sink.has(n));
    const windows: Array<{ lines: number; ms: number }> = [];
    for (const n of lostOnDisk) {
      if (windows.length && !disk.has(n - 1)) windows[windows.length - 1]!.lines++;
      else windows.push({ lines: 1, ms: 0 });
      let after = n + 1;
      while (!disk.has(after) && after < written.lines) after++;
      const before = disk.get(n - windows[windows.length - 1]!.lines)?.[0];
      const next = disk.get(after)?.[0];
      if (before !== undefined && next !== undefined) windows[windows.length - 1]!.ms = next - before;
    }
    expect(windows.length).toBeLessThanOrEqual(ROTATIONS);
    console.log(`copytruncate at ${RATE} lines/s, ${ROTATIONS} rotations: ${written.lines} lines written, ${lostOnDisk.length} in no file `
      + `(windows: ${windows.map((w) => `${w.lines} lines/${w.ms.toFixed(1)} ms`).join(', ') || 'none'}), `
      + `${lostOnDisk.length - missing.length} of them read before the truncate, ${missing.length} missing from the sink`);
    // logrotate's own window, which grows when the machine is busy (a few ms idle, tens of ms under load).
    expect(lostOnDisk.length).toBeLessThan(written.lines * 0.1);
    expect(sink.size + missing.length).toBe(written.lines);
  });
});
