/**
 * The tail source while it runs, over real files: rotation by rename (the old file read to its end
 * through its open descriptor, then closed), copytruncate done by hand in both event orders and
 * with lines read past the copy's end, deletion, partial lines, new files, latency.
 */
import { appendFileSync, closeSync, copyFileSync, mkdirSync, openSync, readdirSync, readlinkSync, renameSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { spec } from '../../src/sources/tail.js';
import * as tail from '../../src/sources/tail.js';
import { parseDuration, parseSize } from '../../src/config/units.js';
import type { ReadContext } from '../../src/types.js';
import { readSink } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { messages, numbered, quiet, startTail, storedPositions, waitFor } from './tail-helpers.js';

/** The tail source's options with their defaults, as validation would give them. */
function defaults(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, o] of Object.entries(spec.options)) {
    if (o.default === undefined) continue;
    out[k] = o.type === 'duration' ? parseDuration(o.default) : o.type === 'size' ? parseSize(o.default) : o.default;
  }
  return out;
}

function setup(): { dir: string; logs: string } {
  const dir = tempDir();
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  return { dir, logs };
}

const range = (prefix: string, from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix} ${from + i}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Paths this process holds open (Linux). */
function openPaths(): string[] {
  return readdirSync('/proc/self/fd').map((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

async function until(dir: string, expected: string[]): Promise<void> {
  await waitFor(`${expected.length} rows`, () => messages(dir).sort(), (m) => m.length >= expected.length);
  await sleep(150);
  expect(messages(dir).sort()).toEqual([...expected].sort());
}

describe('tail source: following', () => {
  it('rename: the renamed file is read to its end through its descriptor, then closed after rotateWait', async () => {
    const { dir, logs } = setup();
    const file = join(logs, 'app.log');
    writeFileSync(file, numbered('a', 0, 20));
    const run = await startTail(dir, { source: 'include: [app.log], rotateWait: 400ms' });
    await until(dir, range('a', 0, 20));
    // A writer that has not reopened its file yet keeps appending to the renamed one.
    const writer = openSync(file, 'a');
    renameSync(file, join(logs, 'app.log.1'));
    writeFileSync(file, numbered('b', 0, 5));
    writeSync(writer, numbered('a', 20, 10));
    closeSync(writer);
    await until(dir, [...range('a', 0, 30), ...range('b', 0, 5)]);
    expect(openPaths()).toContain(join(logs, 'app.log.1'));
    await waitFor('the rotated file closed', openPaths, (p) => !p.includes(join(logs, 'app.log.1')), 5000);
    appendFileSync(file, numbered('b', 5, 5));
    await until(dir, [...range('a', 0, 30), ...range('b', 0, 10)]);
    expect((await run.stop()).exitCode).toBe(130);
    expect(openPaths().filter((p) => p.startsWith(logs))).toEqual([]);
  });

  it.each(['copy first', 'truncate first'] as const)('copytruncate (%s), with lines read past the end of the copy: nothing twice, nothing lost', async (order) => {
    const { dir, logs } = setup();
    const file = join(logs, 'app.log');
    // Under 1 KiB: a small file's fingerprint is all of it.
    writeFileSync(file, numbered('a', 0, 40));
    // A copy is held while its original is in place for up to rotateWait (this test takes its time).
    const run = await startTail(dir, { source: 'rotateWait: 3s' });
    await until(dir, range('a', 0, 40));
    const copy = Buffer.from(numbered('a', 0, 40));
    if (order === 'copy first') copyFileSync(file, join(logs, 'app.log.1'));
    // Lines written after the copy and read before the truncate: already delivered, not in the copy.
    appendFileSync(file, numbered('a', 40, 10));
    await until(dir, range('a', 0, 50));
    await sleep(150);
    truncateSync(file, 0);
    appendFileSync(file, numbered('b', 0, 5));
    if (order === 'truncate first') {
      await until(dir, [...range('a', 0, 50), ...range('b', 0, 5)]);
      writeFileSync(join(logs, 'app.log.1'), copy);
    }
    appendFileSync(file, numbered('b', 5, 5));
    await until(dir, [...range('a', 0, 50), ...range('b', 0, 10)]);
    await sleep(500);
    expect(messages(dir).sort()).toEqual([...range('a', 0, 50), ...range('b', 0, 10)].sort());
    await run.stop();
  });

  it('a truncated file\'s old generation leaves the index a minute later, its cursor with it, while the run goes on', async () => {
    const { dir, logs } = setup();
    const file = join(logs, 'app.log');
    writeFileSync(file, numbered('a', 0, 20));
    const start = Date.now();
    vi.useFakeTimers({ toFake: ['Date'], now: start });
    try {
      const run = await startTail(dir);
      await until(dir, range('a', 0, 20));
      truncateSync(file, 0);
      appendFileSync(file, numbered('b', 0, 5));
      await until(dir, [...range('a', 0, 20), ...range('b', 0, 5)]);
      const before = await storedPositions(dir);
      expect(before.index!.ids, 'the new generation, and the old one kept for copies').toHaveLength(2);
      // Past the retention: the old generation is forgotten by the running tail, cursor and all.
      vi.setSystemTime(start + 120_000);
      let ids = before.index!.ids;
      for (let i = 0; i < 200 && ids.length > 1; i++) {
        await sleep(25);
        ids = (await storedPositions(dir)).index!.ids;
      }
      expect(ids, 'only the generation followed now').toHaveLength(1);
      // Past a flushInterval: anything the tail still had for the old generation is committed.
      await sleep(300);
      const { index, cursors } = await storedPositions(dir);
      expect(cursors.map((c) => c.id), 'no cursor the index does not list').toEqual(index!.ids);
      appendFileSync(file, numbered('b', 5, 5));
      await until(dir, [...range('a', 0, 20), ...range('b', 0, 10)]);
      await run.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('a deleted file is read to its end, then closed after rotateWait', async () => {
    const { dir, logs } = setup();
    const file = join(logs, 'gone.log');
    writeFileSync(file, numbered('g', 0, 10));
    const run = await startTail(dir, { source: 'rotateWait: 400ms' });
    await until(dir, range('g', 0, 10));
    const writer = openSync(file, 'a');
    rmSync(file);
    writeSync(writer, numbered('g', 10, 5));
    closeSync(writer);
    await until(dir, range('g', 0, 15));
    await waitFor('the deleted file closed', openPaths, (p) => !p.some((x) => x.startsWith(file)), 5000);
    await run.stop();
  });

  it.each([
    ['200ms', ['whole', 'first half', 'second half']],
    ['0', ['whole', 'first halfsecond half']],
  ] as const)('a partial line with partialLineTimeout %s', async (timeout, expected) => {
    const { dir, logs } = setup();
    const file = join(logs, 'p.log');
    writeFileSync(file, 'whole\nfirst half');
    const run = await startTail(dir, { source: `partialLineTimeout: ${timeout}` });
    await sleep(700);
    expect(messages(dir)).toEqual(expected.length === 3 ? ['whole', 'first half'] : ['whole']);
    appendFileSync(file, 'second half\n');
    await until(dir, [...expected]);
    await run.stop();
  });

  it('new files are read from their start, even with startAt: end', async () => {
    const { dir, logs } = setup();
    writeFileSync(join(logs, 'old.log'), numbered('old', 0, 5));
    const run = await startTail(dir, { source: 'startAt: end' });
    await sleep(300);
    mkdirSync(join(logs, 'sub'));
    writeFileSync(join(logs, 'sub/new.log'), numbered('new', 0, 5));
    appendFileSync(join(logs, 'old.log'), numbered('old', 5, 2));
    await until(dir, [...range('new', 0, 5), ...range('old', 5, 2)]);
    await run.stop();
  });

  it('an appended line is committed within flushInterval', async () => {
    const { dir, logs } = setup();
    const file = join(logs, 'l.log');
    writeFileSync(file, '');
    const run = await startTail(dir, { sink: 'flushInterval: 200ms' });
    await sleep(300);
    const latencies: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      appendFileSync(file, `x ${i}\n`);
      await waitFor(`line ${i}`, () => readSink(join(dir, 'out')).length, (n) => n === i + 1, 5000);
      latencies.push(performance.now() - t0);
      await sleep(37);
    }
    await run.stop();
    latencies.sort((a, b) => a - b);
    // The sink commits every 200 ms; reading adds a millisecond or two, this test's polling up to 20 ms,
    // a commit (fsyncs) a few more; a machine busy with other tests gets some slack.
    expect(latencies[4]!).toBeLessThan(350);
    expect(latencies[9]!).toBeLessThan(1000);
  });
});

describe('tail source: a held-up consumer', () => {
  it('does not take a copytruncate copy for a file of its own before it has seen the truncate', async () => {
    const { logs } = setup();
    const file = join(logs, 'app.log');
    writeFileSync(file, numbered('a', 0, 30));
    const positions = new Map<string, unknown>();
    const stop = new AbortController();
    const ctx: ReadContext = {
      signal: stop.signal, scope: {}, once: false, log: quiet,
      position: async (s) => positions.get(s), savePosition: async (s, v) => void positions.set(s, v), artifactState: async () => undefined, recordSkipped: async () => undefined,
    };
    const source = tail.create({ ...defaults(), path: logs, rotateWait: 300, pollInterval: 50 });
    const it = source.read(ctx)[Symbol.asyncIterator]();
    const records: unknown[] = [];
    const pull = async (): Promise<void> => {
      const r = await it.next();
      if (!r.done) records.push(...r.value.records);
    };
    while (records.length < 30) await pull();
    copyFileSync(file, join(logs, 'app.log.1'));
    const next = pull();
    await sleep(200);
    appendFileSync(file, 'a 30\n');
    await next;
    // The consumer stops pulling (a slow sink) for longer than rotateWait; the original is truncated meanwhile.
    await sleep(700);
    truncateSync(file, 0);
    appendFileSync(file, numbered('b', 0, 3));
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline) await Promise.race([pull(), sleep(100)]);
    stop.abort();
    await it.return?.();
    expect(records.map(String).sort()).toEqual([...range('a', 0, 31), ...range('b', 0, 3)].sort());
  });
});
