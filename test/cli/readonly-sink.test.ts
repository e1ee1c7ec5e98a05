/**
 * A sink directory that becomes read-only, through the real CLI. We run as root, for whom chmod
 * changes nothing, so the sink is a small tmpfs remounted read-only (as the full-disk test in
 * reliability.test.ts mounts one). Whether the file system turns read-only before a run or in the
 * middle of one, the run fails with PIPE_SINK_FAILED naming the sink and the path, exits non-zero
 * without a stack trace, commits nothing short, and once the file system is writable again the
 * next run delivers every row exactly once.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collect, idCounts, readSink, runCli, spawnCli } from '../helpers/cli.js';
import { cloudTrailEvent } from '../helpers/data.js';
import { tempDir } from '../helpers/tmp.js';

/** Why tmpfs cannot be mounted here (not root, no CAP_SYS_ADMIN in a container), or undefined if it can. */
function cannotMount(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: mounting a tmpfs needs root';
  const probe = mkdtempSync(join(tmpdir(), 'pipe-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('mount', ['-o', 'remount,ro', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return `cannot mount and remount a tmpfs: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const skipReason = cannotMount();
if (skipReason) console.warn(`readonly-sink.test.ts skipped: ${skipReason}`);

function mountTmpfs(dir: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', dir]);
}
/** Remounts read-only; the kernel refuses (EBUSY) while a file is open for writing, so that is retried. */
async function readOnly(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      execFileSync('mount', ['-o', 'remount,ro', dir], { stdio: 'pipe' });
      return;
    } catch (err) {
      if (attempt >= 100) throw err;
      await sleep(20);
    }
  }
}
const writable = (dir: string): void => void execFileSync('mount', ['-o', 'remount,rw', dir]);

/** CloudTrail deliveries numbered from `first` (so two batches never share an eventID); returns the eventIDs. */
function writeDeliveries(dir: string, first: number, files: number, perFile: number): string[] {
  mkdirSync(dir, { recursive: true });
  const ids: string[] = [];
  for (let f = first; f < first + files; f++) {
    const records = Array.from({ length: perFile }, (_, i) => cloudTrailEvent(f, i));
    ids.push(...records.map((r) => r.eventID as string));
    writeFileSync(join(dir, `ct_${f}.json.gz`), gzipSync(JSON.stringify({ Records: records })));
  }
  return ids;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The failure every read-only case must show: stable code, the sink named, the reason, no stack. */
function expectClearFailure(stderr: string, out: string): void {
  expect(stderr).toMatch(new RegExp(`error: jsonl sink ${out}: EROFS: read-only file system, \\w+ '${out}/[^']+' \\(code=PIPE_SINK_FAILED\\)`));
  expect(stderr).not.toMatch(/\n\s+at /);
  expect(stderr).not.toMatch(/PIPE_INTERNAL|ENOENT/);
}

/** Every row present exactly once and every expected id there. */
function expectExactlyOnce(out: string, ids: string[]): void {
  const counts = idCounts(readSink(out));
  const missing = ids.filter((id) => !counts.has(id)).length;
  const duplicated = [...counts.values()].filter((n) => n > 1).length;
  expect({ missing, duplicated, rows: counts.size }).toEqual({ missing: 0, duplicated: 0, rows: ids.length });
}

describe.skipIf(skipReason !== undefined)('a read-only sink directory', () => {
  it('before a run: a clear error, nothing committed, and the next run resumes once it is writable', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    mountTmpfs(out);
    try {
      const first = writeDeliveries(join(dir, 'in'), 0, 4, 50);
      const file = join(dir, 'ct.yml');
      writeFileSync(file, `name: ct\nstate: ${join(dir, 'state.db')}\nsource: { type: files, path: ${join(dir, 'in')} }\nmappers: [cloudtrail]\nsink: { type: jsonl, dir: ${out}, maxRows: 30, partition: day }\n`);
      const ok = await runCli(['run', file, '--no-progress']);
      expect(ok.code, ok.stderr).toBe(0);

      const second = writeDeliveries(join(dir, 'in'), 100, 4, 50);
      await readOnly(out);
      const r = await runCli(['run', file, '--no-progress']);
      expect(r.code).toBe(1);
      expectClearFailure(r.stderr, out);
      // Everything committed before is whole and once; nothing of the failed run is there.
      expectExactlyOnce(out, first);
      const status = await runCli(['status', file]);
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/exit 1/);

      writable(out);
      const again = await runCli(['run', file, '--no-progress']);
      expect(again.code, again.stderr).toBe(0);
      expectExactlyOnce(out, [...first, ...second]);
    } finally {
      execFileSync('umount', ['-l', out]);
    }
  });

  it('between a commit and its rename: the committed chunk waits, and is rolled forward once writable', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    mountTmpfs(out);
    try {
      const ids = writeDeliveries(join(dir, 'in'), 0, 6, 40);
      const file = join(dir, 'ct.yml');
      writeFileSync(file, `name: ct\nstate: ${join(dir, 'state.db')}\nsource: { type: files, path: ${join(dir, 'in')} }\nmappers: [cloudtrail]\nsink: { type: jsonl, dir: ${out}, maxRows: 50 }\n`);
      // Killed right after its second commit, before the rename: a chunk recorded in the state, still under its temporary name.
      const killed = await runCli(['run', file, '--no-progress', '--threads', '0'], { env: { PIPE_FAILPOINT: 'sink:after-commit@2' } });
      expect(killed.signal).toBe('SIGKILL');
      const before = readSink(out).length;
      expect(before).toBeGreaterThan(0);

      await readOnly(out);
      const r = await runCli(['run', file, '--no-progress']);
      expect(r.code).toBe(1);
      expectClearFailure(r.stderr, out);
      expect(readSink(out)).toHaveLength(before);

      writable(out);
      const again = await runCli(['run', file, '--no-progress']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toMatch(/recovered sink: 1 committed chunk\(s\) rolled forward/);
      expectExactlyOnce(out, ids);
    } finally {
      execFileSync('umount', ['-l', out]);
    }
  });

  it('in the middle of a run: the run stops with a clear error, and after a remount every line is delivered exactly once', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    mountTmpfs(out);
    try {
      const file = join(dir, 'tail.yml');
      writeFileSync(file, `name: app\nstate: ${join(dir, 'state.db')}\nsource: { type: tail, path: ${logs}, pollInterval: 50ms }\nsink: { type: jsonl, dir: ${out}, flushInterval: 50ms, maxRows: 25 }\n`);
      const log = join(logs, 'app.log');
      const lines: string[] = [];
      const write = (from: number, to: number): void => {
        let text = '';
        for (let i = from; i < to; i++) {
          lines.push(`line ${i}`);
          text += `line ${i}\n`;
        }
        appendFileSync(log, text);
      };
      write(0, 100);
      const child = spawnCli(['run', file, '--no-progress']);
      child.stdin!.end();
      const done = collect(child);
      await until('the first 100 lines committed', () => readSink(out).length === 100);

      await readOnly(out);
      write(100, 200);
      const r = await Promise.race([done, sleep(20_000).then(() => undefined)]);
      if (!r) child.kill('SIGKILL');
      expect(r, 'the run went on although its sink is read-only').toBeDefined();
      expect(r!.code).not.toBe(0);
      expect(r!.code).not.toBe(130);
      expectClearFailure(r!.stderr, out);
      // What was committed is whole and once: the first 100 lines, nothing short.
      const committed = readSink(out).map((row) => row.message);
      expect(committed).toEqual(lines.slice(0, 100));

      writable(out);
      write(200, 250);
      const again = await runCli(['run', file, '--no-progress', '--once']);
      expect(again.code, again.stderr).toBe(0);
      const messages = readSink(out).map((row) => String(row.message));
      const counts = new Map<string, number>();
      for (const m of messages) counts.set(m, (counts.get(m) ?? 0) + 1);
      expect({ rows: messages.length, distinct: counts.size }).toEqual({ rows: lines.length, distinct: lines.length });
      expect([...counts.keys()].sort()).toEqual([...lines].sort());
    } finally {
      execFileSync('umount', ['-l', out]);
    }
  });
});
