/**
 * Reliability through the real CLI: the error monitor, a lost state file, locks held by live,
 * dead and stalled runs, a full disk.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { collect, idCounts, readSink, runCli, spawnCli } from '../helpers/cli.js';
import { writeCloudTrail } from '../helpers/data.js';
import { tempDir } from '../helpers/tmp.js';

function pipeline(dir: string, out = join(dir, 'out'), extra = ''): string {
  const file = join(dir, 'ct.yml');
  writeFileSync(file, `name: ct\nstate: ${join(dir, 'state.db')}\nsource: { type: files, path: ${join(dir, 'in')} }\nmappers: [cloudtrail]\nsink: { type: jsonl, dir: ${out}${extra} }\n`);
  return file;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('error monitor', () => {
  it('stops early when artifacts keep failing the same way', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'in'));
    for (let i = 0; i < 60; i++) writeFileSync(join(dir, 'in', `bad-${String(i).padStart(2, '0')}.json`), '{"Records": [');
    const r = await runCli(['run', pipeline(dir), '--no-progress', '--stop-after-failures', '10', '--threads', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/stopped early: the last 1\d artifacts all failed with PIPE_ARTIFACT_CORRUPT/);
    const status = JSON.parse((await runCli(['status', pipeline(dir), '--json'])).stdout) as { artifacts: { failed: number } };
    expect(status.artifacts.failed).toBeLessThan(30);
  });

  it('is not tripped by isolated bad artifacts among good ones', async () => {
    const dir = tempDir();
    const ids = writeCloudTrail(join(dir, 'in'), 30, 2);
    for (let i = 0; i < 30; i++) writeFileSync(join(dir, 'in', `AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/ct_${String(i).padStart(4, '0')}b.json`), 'garbage');
    const r = await runCli(['run', pipeline(dir), '--no-progress', '--stop-after-failures', '10']);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/stopped early/);
    expect(r.stderr).toMatch(/30 failed/);
    expect(readSink(join(dir, 'out'))).toHaveLength(ids.length);
  });
});

describe('state file', () => {
  it('a lost state file is noticed instead of collecting everything again', async () => {
    const dir = tempDir();
    writeCloudTrail(join(dir, 'in'), 3, 4);
    const file = pipeline(dir);
    expect((await runCli(['run', file, '--no-progress'])).code).toBe(0);
    rmSync(join(dir, 'state.db'));
    rmSync(join(dir, 'state.db-wal'), { force: true });
    rmSync(join(dir, 'state.db-shm'), { force: true });
    const status = await runCli(['status', file]);
    expect(status.code).toBe(2);
    expect(status.stderr).toMatch(/no state file at .*state\.db/);
    const r = await runCli(['run', file, '--no-progress']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/committed with another state file .* --accept-new-state/);
    expect(readSink(join(dir, 'out'))).toHaveLength(12);
    const forced = await runCli(['run', file, '--no-progress', '--accept-new-state']);
    expect(forced.code).toBe(0);
    expect(readSink(join(dir, 'out'))).toHaveLength(24);
  });

  it('a corrupted state file is a clear error, exit 2, and pipe status says so', async () => {
    const dir = tempDir();
    writeCloudTrail(join(dir, 'in'), 1, 1);
    const file = pipeline(dir);
    writeFileSync(join(dir, 'state.db'), 'x'.repeat(4096));
    const r = await runCli(['run', file, '--no-progress']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/state file .*state\.db cannot be used/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const s = await runCli(['status', file]);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/cannot be used/);
  });
});

describe('locks', () => {
  it('a second run exits 3 naming the holder; a stalled holder loses its lease and cannot commit', async () => {
    const dir = tempDir();
    const ids = writeCloudTrail(join(dir, 'in'), 200, 200);
    const file = pipeline(dir, join(dir, 'out'), ', maxRows: 300');
    const env = { PIPE_LOCK_LEASE_MS: '1500' };
    const holder = spawnCli(['run', file, '--no-progress'], { env });
    const holderDone = collect(holder);
    for (let i = 0; i < 400 && readSink(join(dir, 'out')).length === 0; i++) await sleep(25);
    const second = await runCli(['run', file, '--no-progress'], { env });
    expect(second.code).toBe(3);
    expect(second.stderr).toContain(`locked by pid ${holder.pid}`);
    // Stall the holder past its lease: another run takes over and finishes the job.
    holder.kill('SIGSTOP');
    await sleep(2000);
    const third = runCli(['run', file, '--no-progress'], { env });
    // Wake the holder once the third run has taken the lock over (the holder may have stopped
    // inside a state transaction, which the third then waits for): it must find its lease taken.
    const db = new Database(join(dir, 'state.db'), { readonly: true, timeout: 20_000 });
    for (let i = 0; i < 600; i++) {
      const row = db.prepare('SELECT pid FROM locks WHERE pipeline = ?').get('ct') as { pid: number } | undefined;
      if (row && row.pid !== holder.pid) break;
      // A holder stopped mid-transaction blocks the takeover: let it go on after a while.
      if (i === 200) holder.kill('SIGCONT');
      await sleep(25);
    }
    db.close();
    holder.kill('SIGCONT');
    const t = await third;
    expect(t.code, t.stderr).toBe(0);
    // Usually the holder is still stopped (or running) when the third run takes over: "lease
    // expired". On a loaded machine the woken holder may notice its expired lease first and exit
    // 3 before the third run gets there: then its pid is gone, "dead". Either way it committed
    // nothing after its lease ended (below).
    expect(t.stderr).toMatch(new RegExp(`ct: lock taken over from pid ${holder.pid} on \\S+ \\((lease expired|dead); run \\S+ did not finish\\)`));
    const h = await holderDone;
    expect(h.code).toBe(3);
    expect(h.stderr).toMatch(/lost its lock/);
    const counts = idCounts(readSink(join(dir, 'out')));
    expect(counts.size).toBe(ids.length);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  });
});

describe('a lock left by a killed run', () => {
  it('is taken over at once, with a warning naming the dead pid (shown even with --quiet)', async () => {
    const dir = tempDir();
    const ids = writeCloudTrail(join(dir, 'in'), 200, 200);
    const file = pipeline(dir, join(dir, 'out'), ', maxRows: 300');
    const killed = spawnCli(['run', file, '--no-progress', '--threads', '0']);
    const killedDone = collect(killed);
    for (let i = 0; i < 400 && readSink(join(dir, 'out')).length === 0; i++) await sleep(25);
    killed.kill('SIGKILL');
    await killedDone;
    const r = await runCli(['run', file, '--no-progress', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`ct: lock taken over from pid ${killed.pid} on \\S+ \\(dead; run \\S+ did not finish\\)`));
    const again = await runCli(['run', file, '--no-progress']);
    expect(again.stderr, 'a released lock is not taken over').not.toMatch(/taken over/);
    const counts = idCounts(readSink(join(dir, 'out')));
    expect(counts.size).toBe(ids.length);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  });
});

const root = process.getuid?.() === 0;

describe('a full disk', () => {
  // Mounting a small tmpfs needs root, which CI has.
  it.skipIf(!root)('fails the run with a clear error, corrupts nothing, and resumes once space returns', async () => {
    const dir = tempDir();
    const ids = writeCloudTrail(join(dir, 'in'), 40, 300);
    const out = join(dir, 'out');
    mkdirSync(out);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', out]);
    try {
      const file = pipeline(dir, out, ', maxRows: 500');
      const r = await runCli(['run', file, '--no-progress']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/ENOSPC|no space/i);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      // What was committed is whole and duplicate-free.
      const partial = readSink(out);
      expect(idCounts(partial).size).toBe(partial.length);
      execFileSync('mount', ['-o', 'remount,size=200m', out]);
      const again = await runCli(['run', file, '--no-progress']);
      expect(again.code, again.stderr).toBe(0);
      const counts = idCounts(readSink(out));
      expect(counts.size).toBe(ids.length);
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
    } finally {
      execFileSync('umount', ['-l', out]);
    }
  });
});

