/** run/backfill options through the real CLI: dry run, mtime windows, several pipelines, JSON logs. */
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSink, runCli } from '../helpers/cli.js';
import { writeCloudTrail } from '../helpers/data.js';
import { tempDir } from '../helpers/tmp.js';

function pipeline(dir: string, name: string, input: string, extra = ''): string {
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, `name: ${name}\nstate: ${join(dir, 'state.db')}\nsource: { type: files, path: ${input} }\nmappers: [cloudtrail]\nsink: { type: jsonl, dir: ${join(dir, 'out', name)}${extra} }\n`);
  return file;
}

describe('run options', () => {
  it('--dry-run lists what would be collected and writes nothing', async () => {
    const dir = tempDir();
    writeCloudTrail(join(dir, 'in'), 3, 4);
    const file = pipeline(dir, 'ct', join(dir, 'in'));
    const r = await runCli(['run', file, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stderr.match(/would collect file:\/\//g)).toHaveLength(3);
    expect(r.stderr).toMatch(/dry run: 3 artifacts \(.*\) would be collected, 0 already collected/);
    expect(readSink(join(dir, 'out/ct'))).toEqual([]);
    expect((await runCli(['run', file])).code).toBe(0);
    const again = await runCli(['run', file, '--dry-run']);
    expect(again.stderr).toMatch(/dry run: 0 artifacts .* 3 already collected/);
  });

  it('backfill --from/--to selects files by mtime and --prefix by relative path; run then collects the rest once', async () => {
    const dir = tempDir();
    const ids = writeCloudTrail(join(dir, 'in'), 4, 5);
    const base = join(dir, 'in/AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01');
    const day = (d: number) => new Date(Date.UTC(2024, 2, d, 12));
    for (let f = 0; f < 4; f++) utimesSync(join(base, `ct_000${f}.json.gz`), day(f + 1), day(f + 1));
    const file = pipeline(dir, 'ct', join(dir, 'in'));
    const b = await runCli(['backfill', file, '--from', '2024-03-02T00:00:00Z', '--to', '2024-03-04T00:00:00Z', '--no-progress']);
    expect(b.code).toBe(0);
    expect(b.stderr).toMatch(/ct: 2 artifacts, 10 rows/);
    expect(new Set(readSink(join(dir, 'out/ct')).map((r) => r._id))).toEqual(new Set(ids.slice(5, 15)));
    const p = await runCli(['backfill', file, '--prefix', 'AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/ct_0003', '--no-progress']);
    expect(p.stderr).toMatch(/ct: 1 artifacts, 5 rows/);
    const r = await runCli(['run', file, '--no-progress']);
    expect(r.stderr).toMatch(/ct: 1 artifacts, 5 rows.*3 unchanged/);
    const rows = readSink(join(dir, 'out/ct'));
    expect(rows.map((x) => x._id).sort()).toEqual([...ids].sort());
  });

  it('runs several pipelines side by side, each isolated; the exit code is the worst', async () => {
    const dir = tempDir();
    writeCloudTrail(join(dir, 'good'), 2, 3);
    const good = pipeline(dir, 'good', join(dir, 'good'));
    const missing = pipeline(dir, 'missing', join(dir, 'does-not-exist'));
    const r = await runCli(['run', good, missing, '--no-progress']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/good: 2 artifacts, 6 rows/);
    expect(r.stderr).toMatch(/missing: error: files source: cannot read .*does-not-exist/);
    expect(readSink(join(dir, 'out/good'))).toHaveLength(6);
    // A directory of pipeline files runs them all.
    const both = await runCli(['run', dir, '--no-progress']);
    expect(both.stderr).toMatch(/good: 0 artifacts/);
  });

  it('--log-format json writes one JSON object per stderr line, ending with the summary', async () => {
    const dir = tempDir();
    writeCloudTrail(join(dir, 'in'), 2, 3);
    writeFileSync(join(dir, 'in/bad.json'), '{');
    const r = await runCli(['run', pipeline(dir, 'ct', join(dir, 'in')), '--log-format', 'json']);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l.level === 'warn' && String(l.msg).includes('bad.json'))).toBe(true);
    const summary = lines.at(-1)!;
    expect(summary).toMatchObject({ msg: 'summary', pipeline: 'ct', artifacts: 3, failed: 1, rows: 6, exit_code: 1 });
  });

  it('pipe list shows every component, and one type alone', async () => {
    const all = await runCli(['list']);
    expect(all.code).toBe(0);
    for (const t of ['source files', 'loader json', 'mapper cloudtrail', 'mapper vpcflow', 'sink jsonl', 'sink stdout']) expect(all.stdout).toContain(t);
    const one = await runCli(['list', 'vpcflow']);
    expect(one.stdout).toMatch(/^mapper vpcflow: /);
    expect(one.stdout).toContain('skipNoData');
    expect((await runCli(['list', 'nope'])).code).toBe(2);
  });

  it('the stdout sink writes rows to stdout and logs to stderr only', async () => {
    const dir = tempDir();
    writeCloudTrail(join(dir, 'in'), 1, 3);
    const file = join(dir, 'p.yml');
    writeFileSync(file, `name: so\nstate: ${join(dir, 's.db')}\nsource: { type: files, path: ${join(dir, 'in')} }\nmappers: [cloudtrail]\nsink: stdout\n`);
    const r = await runCli(['run', file]);
    expect(r.code).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { eventID: string });
    expect(rows.map((x) => x.eventID)).toEqual(['ev-0000-00000', 'ev-0000-00001', 'ev-0000-00002']);
    expect(r.stderr.split('\n').filter(Boolean).every((l) => l.startsWith('pipe: '))).toBe(true);
  });
});
