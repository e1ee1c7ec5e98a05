/** Every exit code of the spec, each from a real CLI invocation in a child process. */
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { collect, readSink, ROOT, runCli, spawnCli } from '../helpers/cli.js';
import { writeCloudTrail } from '../helpers/data.js';
import { tempDir } from '../helpers/tmp.js';

function ctPipeline(dir: string, name = 'ct', extra = ''): string {
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, `name: ${name}
state: ${join(dir, 'state.db')}
source: { type: files, path: ${join(dir, 'in')} }
mappers: [cloudtrail]
sink: { type: jsonl, dir: ${join(dir, 'out')}${extra} }
`);
  return file;
}

describe('exit codes', () => {
  it('0: the README demo runs from a fresh directory and a rerun collects nothing new', async () => {
    const dir = tempDir();
    symlinkSync(join(ROOT, 'fixtures'), join(dir, 'fixtures'));
    mkdirSync(join(dir, 'pipelines'));
    const args = ['run', join(ROOT, 'pipelines/local-cloudtrail.yml'), join(ROOT, 'pipelines/local-vpcflow.yml'), '--no-progress'];
    const first = await runCli(args, { cwd: dir });
    expect(first.stderr).toMatch(/local-cloudtrail: 4 artifacts, 10 rows/);
    expect(first.code).toBe(0);
    const ct = readSink(join(dir, 'out/cloudtrail'));
    expect(ct).toHaveLength(10);
    expect(ct.every((r) => typeof r._id === 'string' && typeof r._time === 'string' && String(r._source).startsWith('file://'))).toBe(true);
    expect(readSink(join(dir, 'out/vpcflow')).length).toBeGreaterThan(10);
    expect(existsSync(join(dir, '.pipe/state.db'))).toBe(true);
    const second = await runCli(args, { cwd: dir });
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(/local-cloudtrail: 0 artifacts, 0 rows.*4 unchanged/);
    expect(readSink(join(dir, 'out/cloudtrail'))).toHaveLength(10);
  });

  it('1: a bad artifact among good ones', async () => {
    const dir = tempDir();
    writeCloudTrail(join(dir, 'in'), 2, 5);
    writeFileSync(join(dir, 'in/bad.json'), '{"Records": [');
    const r = await runCli(['run', ctPipeline(dir), '--no-progress']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/artifact failed: file:\/\/.*bad\.json/);
    expect(readSink(join(dir, 'out'))).toHaveLength(10);
  });

  it('2: configuration errors, usage errors and unknown commands', async () => {
    const dir = tempDir();
    const file = join(dir, 'bad.yml');
    writeFileSync(file, 'name: x\nsource: { type: files }\nsink: { type: jsonl, dir: /tmp/x, maxRows: lots }\n');
    const r = await runCli(['run', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('source.path');
    expect(r.stderr).toContain('sink.maxRows');
    expect((await runCli(['run'])).code).toBe(2);
    expect((await runCli(['frobnicate'])).code).toBe(2);
    expect((await runCli(['backfill', ctPipeline(dir), '--from', 'yesterday-ish'])).code).toBe(2);
    expect((await runCli(['--help'])).code).toBe(0);
  });

  it('3: another live run holds the lock', async () => {
    const dir = tempDir();
    writeCloudTrail(join(dir, 'in'), 1, 1);
    const file = ctPipeline(dir);
    // A first run creates the state file; then a live process (this test) is recorded as holder.
    expect((await runCli(['run', file, '--no-progress'])).code).toBe(0);
    const db = new Database(join(dir, 'state.db'));
    db.prepare('UPDATE locks SET pid = ?, host = ?, run_id = ?, expires_at = ? WHERE pipeline = ?').run(process.pid, hostname(), 'holder', Date.now() + 60_000, 'ct');
    db.close();
    const r = await runCli(['run', file, '--no-progress']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`locked by pid ${process.pid}`);
  });

  it('130: SIGINT stops reading, flushes, commits; a rerun finishes exactly once', async () => {
    const dir = tempDir();
    const ids = writeCloudTrail(join(dir, 'in'), 300, 200);
    const file = ctPipeline(dir, 'ct', ', maxRows: 500');
    const child = spawnCli(['run', file, '--no-progress']);
    const done = collect(child);
    // Interrupt once the first chunk is visible, in the middle of the run.
    for (let i = 0; i < 400 && readSink(join(dir, 'out')).length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/SIGINT: stopping/);
    const partial = readSink(join(dir, 'out')).length;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(ids.length);
    const rerun = await runCli(['run', file, '--no-progress']);
    expect(rerun.code).toBe(0);
    const rows = readSink(join(dir, 'out'));
    expect(rows).toHaveLength(ids.length);
    expect(new Set(rows.map((x) => x._id)).size).toBe(ids.length);
  });
});
