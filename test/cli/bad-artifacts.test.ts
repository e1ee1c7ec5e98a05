/** Bad artifacts among good ones: the run goes on, exit 1, each failure in `pipe status` with its reason. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readSink, runCli } from '../helpers/cli.js';
import { cloudTrailEvent, prng, writeCloudTrail } from '../helpers/data.js';
import { tempDir } from '../helpers/tmp.js';

describe('bad artifacts', () => {
  it('are recorded with reason and position while every good row is delivered', async () => {
    const dir = tempDir();
    const goodIds = writeCloudTrail(join(dir, 'in'), 5, 50);
    const records = [cloudTrailEvent(900, 0), cloudTrailEvent(900, 1)];
    const whole = gzipSync(JSON.stringify({ Records: records }));
    const random = prng(7);
    const bad: Record<string, Buffer | string> = {
      'truncated.json.gz': whole.subarray(0, Math.floor(whole.length * 0.6)),
      'truncated.json': JSON.stringify({ Records: records }).slice(0, 700),
      'random.bin': Buffer.from(Array.from({ length: 4096 }, (_, i) => (i < 2 ? 0x41 : Math.floor(random() * 256)))),
      'empty.json': '',
      'notes.txt': 'this is not JSON at all\nsecond line\n',
    };
    for (const [name, content] of Object.entries(bad)) writeFileSync(join(dir, 'in', name), content);
    const file = join(dir, 'ct.yml');
    writeFileSync(file, `name: ct\nstate: ${join(dir, 'state.db')}\nsource: { type: files, path: ${join(dir, 'in')} }\nmappers: [cloudtrail]\nsink: { type: jsonl, dir: ${join(dir, 'out')} }\n`);

    const r = await runCli(['run', file, '--no-progress']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ 5 failed/);
    const rows = readSink(join(dir, 'out'));
    const got = new Set(rows.map((x) => x._id));
    for (const id of goodIds) expect(got.has(id)).toBe(true);

    const status = await runCli(['status', file, '--json']);
    expect(status.code).toBe(0);
    const report = JSON.parse(status.stdout) as { artifacts: { failed: number; done: number }; failed: Array<{ uri: string; errorCode: string; errorMessage: string; errorPosition?: { byte?: number } }> };
    expect(report.artifacts).toMatchObject({ failed: 5, done: 5 });
    const byName = new Map(report.failed.map((f) => [f.uri.split('/').pop(), f]));
    expect([...byName.keys()].sort()).toEqual(Object.keys(bad).sort());
    expect(byName.get('empty.json')!.errorCode).toBe('PIPE_ARTIFACT_EMPTY');
    expect(byName.get('truncated.json.gz')!.errorCode).toMatch(/PIPE_ARTIFACT_(TRUNCATED|CORRUPT)/);
    for (const f of report.failed) {
      expect(f.errorMessage.length).toBeGreaterThan(5);
      expect(f.errorPosition).toBeDefined();
    }
    const text = await runCli(['status', file]);
    expect(text.stdout).toContain('failed:');
    expect(text.stdout).toContain('truncated.json.gz');
    expect(text.stdout).toContain('--retry-failed');

    // Failed ones are not tried again unless asked; asked, they fail again the same way.
    const again = await runCli(['run', file, '--no-progress']);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/5 failed earlier/);
    const retry = await runCli(['run', file, '--no-progress', '--retry-failed']);
    expect(retry.code).toBe(1);
    expect(readSink(join(dir, 'out'))).toHaveLength(rows.length);
  });
});
