/**
 * Kill -9 exactly-once: the real CLI over thousands of rows in many artifacts, SIGKILLed inside
 * every window of the commit protocol (failpoints) and at seeded random instants, then run to
 * completion: every expected row is in the sink exactly once.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collect, idCounts, readSink, runCli, spawnCli } from '../helpers/cli.js';
import { prng, writeCloudTrail } from '../helpers/data.js';
import { tempDir } from '../helpers/tmp.js';

const SEED = Number(process.env.PIPE_CHAOS_SEED ?? 20240301);

function pipeline(dir: string, gzip: boolean): string {
  const file = join(dir, 'ct.yml');
  writeFileSync(file, `name: ct
state: ${join(dir, 'state.db')}
source: { type: files, path: ${join(dir, 'in')}, concurrency: 3 }
mappers: [cloudtrail]
sink: { type: jsonl, dir: ${join(dir, 'out')}, maxRows: 170, flushInterval: 50ms, gzip: ${gzip}, partition: hour }
`);
  return file;
}

function assertExactlyOnce(out: string, ids: string[]): void {
  const counts = idCounts(readSink(out));
  const missing = ids.filter((id) => !counts.has(id));
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  const unexpected = [...counts.keys()].filter((id) => !ids.includes(id));
  expect({ missing: missing.length, duplicated: duplicated.length, unexpected: unexpected.length }).toEqual({ missing: 0, duplicated: 0, unexpected: 0 });
}

describe('kill -9 at any instant', () => {
  it.each([false, true])('loses and duplicates nothing (gzip %s)', async (gzip) => {
    const dir = tempDir();
    const ids = writeCloudTrail(join(dir, 'in'), 40, 120);
    const file = pipeline(dir, gzip);
    const out = join(dir, 'out');
    const random = prng(SEED + (gzip ? 1 : 0));
    let killed = 0;
    // Inside each window of the commit protocol first, deterministically.
    for (const point of ['sink:write@3', 'sink:before-commit@2', 'sink:after-commit@3', 'sink:after-rename@2', 'sink:after-commit@1']) {
      const r = await runCli(['run', file, '--no-progress'], { env: { PIPE_FAILPOINT: point } });
      if (r.signal === 'SIGKILL') killed++;
      else expect(r.code).toBe(0);
    }
    expect(killed).toBeGreaterThanOrEqual(4);
    // Then at random instants.
    for (let round = 0; round < 6; round++) {
      const child = spawnCli(['run', file, '--no-progress']);
      const done = collect(child);
      const timer = setTimeout(() => child.kill('SIGKILL'), 120 + Math.floor(random() * 500));
      const r = await done;
      clearTimeout(timer);
      if (r.signal !== 'SIGKILL') expect(r.code, r.stderr).toBe(0);
      const rows = readSink(out);
      // Whatever is visible after a crash is already duplicate-free.
      expect(idCounts(rows).size).toBe(rows.length);
    }
    const final = await runCli(['run', file, '--no-progress']);
    expect(final.code, final.stderr).toBe(0);
    assertExactlyOnce(out, ids);
  });
});
