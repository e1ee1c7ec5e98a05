/**
 * The tail source across restarts, with single passes (`--once`) over real files: what a stopped
 * pipe finds when it starts again (appends, partial lines, truncation, inode reuse, rotation by
 * rename and by copytruncate, compressed copies) and the options every user relies on.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { loadPipeline } from '../../src/config/load.js';
import { makeResolver } from '../../src/config/resolve.js';
import { positionId } from '../../src/rows.js';
import { builtins } from '../../src/registry.js';
import * as tail from '../../src/sources/tail.js';
import { readSink, ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { SqliteStore } from '../../src/state/sqlite.js';
import type { ReadContext } from '../../src/types.js';
import { deadLetters, messages, numbered, quiet, storedPositions, tailOnce } from './tail-helpers.js';

function setup(): { dir: string; logs: string } {
  const dir = tempDir();
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  return { dir, logs };
}

const range = (prefix: string, from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix} ${from + i}`);

describe('tail source: spec', () => {
  it('documents every option with a default or as required, and the example pipeline validates', async () => {
    expect(tail.spec.type).toBe('tail');
    for (const [key, o] of Object.entries(tail.spec.options)) {
      expect(o.description.length, key).toBeGreaterThan(20);
      expect(o.example, key).toBeDefined();
      expect(o.required === true, key).toBe(o.default === undefined);
    }
    for (const key of ['path', 'include', 'exclude', 'startAt', 'maxLineBytes', 'partialLineTimeout']) expect(Object.keys(tail.spec.options)).toContain(key);
    const cfg = await loadPipeline(join(ROOT, 'pipelines/tail-local.yml'), { env: { LOG_DIR: '/var/log/myapp' }, resolve: makeResolver(builtins) });
    expect(cfg.source.type).toBe('tail');
    expect(cfg.source.options).toMatchObject({ path: '/var/log/myapp', startAt: 'beginning', maxLineBytes: 1024 * 1024, partialLineTimeout: 5000 });
  });
});

describe('tail source: restarts', () => {
  it('a generation whose file is gone is forgotten a minute after it left, across --once runs: index and cursors stay bounded', async () => {
    const { dir, logs } = setup();
    // A cursor the index does not list (a run stopped between the two writes): gone at the next start.
    const store = new SqliteStore(join(dir, 'state.db'), 'h');
    const lock = await store.acquireLock('t', { pid: process.pid, host: 'h', runId: 'r0' }, 60_000);
    await store.setPosition(lock, 'tail:orphan', { v: 1, id: 'orphan' });
    await store.releaseLock(lock);
    await store.close();
    const start = Date.now();
    vi.useFakeTimers({ toFake: ['Date'], now: start });
    try {
      const seen: string[] = [];
      for (let i = 0; i < 6; i++) {
        // Each pass (a cron job, two minutes apart) finds last pass's file deleted and a new one.
        vi.setSystemTime(start + i * 120_000);
        if (i > 0) rmSync(join(logs, `app-${i - 1}.log`));
        writeFileSync(join(logs, `app-${i}.log`), numbered(`f${i}`, 0, 3));
        expect((await tailOnce(dir)).rows).toBe(3);
        const { index, cursors } = await storedPositions(dir);
        seen.push(...index!.ids.filter((id) => !seen.includes(id)));
        // The file followed now, and the one deleted since the last pass (kept a minute for copies).
        expect(index!.ids.length, `pass ${i}`).toBe(Math.min(i + 1, 2));
        expect(cursors.map((c) => c.id).sort(), `pass ${i}`).toEqual([...index!.ids].sort());
      }
      expect(seen).toHaveLength(6);
      expect(messages(dir)).toHaveLength(18);
    } finally {
      vi.useRealTimers();
    }
  });

  it('resumes after the last complete line; a partial line is completed, never cut or repeated; _ids are stable', async () => {
    const { dir, logs } = setup();
    const file = join(logs, 'app.log');
    writeFileSync(file, numbered('a', 0, 100) + 'half of a li');
    expect((await tailOnce(dir)).rows).toBe(100);
    expect(messages(dir)).toEqual(range('a', 0, 100));
    appendFileSync(file, 'ne\n' + numbered('a', 100, 50));
    expect((await tailOnce(dir)).rows).toBe(51);
    expect((await tailOnce(dir)).rows).toBe(0);
    expect(messages(dir)).toEqual([...range('a', 0, 100), 'half of a line', ...range('a', 100, 50)]);
    const rows = readSink(join(dir, 'out'));
    const { cursors } = await storedPositions(dir);
    expect(cursors).toHaveLength(1);
    const cur = cursors[0]!;
    expect(cur).toMatchObject({ path: file, line: 151, offset: statSync(file).size, ino: String(statSync(file, { bigint: true }).ino), gzip: false, done: false, fpLen: statSync(file).size });
    // _id: the generation and the line number, so a re-read line gets the same one.
    expect(rows.map((r) => r._id)).toEqual(rows.map((_, i) => positionId(`tail:${String(cur.id)}`, i)));
    expect(rows[0]!._source).toBe(`file://${file}`);
  });

  it('detects truncation while stopped, even when the file grew back past the old offset', async () => {
    const { dir, logs } = setup();
    const file = join(logs, 'app.log');
    writeFileSync(file, numbered('old', 0, 100));
    await tailOnce(dir);
    const size = statSync(file).size;
    truncateSync(file, 0);
    appendFileSync(file, numbered('new', 0, 150));
    expect(statSync(file).size).toBeGreaterThan(size);
    expect((await tailOnce(dir)).rows).toBe(150);
    expect(messages(dir)).toEqual([...range('old', 0, 100), ...range('new', 0, 150)]);
  });

  it('detects inode reuse while stopped: a new file on a freed inode is read from its start', async () => {
    const { dir, logs } = setup();
    writeFileSync(join(logs, 'a.log'), numbered('a', 0, 80));
    await tailOnce(dir);
    const ino = statSync(join(logs, 'a.log')).ino;
    rmSync(join(logs, 'a.log'));
    // ext4 hands the freed inode to the next file created. Tests running alongside may take it
    // first: retry until they have let it go again.
    let b = '';
    for (const end = Date.now() + 10_000; !b && Date.now() < end; ) {
      const p = join(logs, 'b.log');
      writeFileSync(p, numbered('b', 0, 120));
      if (statSync(p).ino === ino) b = p;
      else {
        rmSync(p);
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    expect(b, 'no inode was reused on this file system').not.toBe('');
    // Longer than the old offset, so without the content checks it would resume mid-file.
    expect((await tailOnce(dir)).rows).toBe(120);
    expect(messages(dir)).toEqual([...range('a', 0, 80), ...range('b', 0, 120)]);
  });

  it('copytruncate while stopped: the copy continues from the offset, the truncated file starts over', async () => {
    const { dir, logs } = setup();
    const file = join(logs, 'app.log');
    writeFileSync(file, numbered('a', 0, 100));
    await tailOnce(dir);
    appendFileSync(file, numbered('a', 100, 50));
    copyFileSync(file, join(logs, 'app.log.1'));
    truncateSync(file, 0);
    appendFileSync(file, numbered('b', 0, 30));
    expect((await tailOnce(dir)).rows).toBe(80);
    expect(messages(dir).sort()).toEqual([...range('a', 0, 150), ...range('b', 0, 30)].sort());
    expect((await tailOnce(dir)).rows).toBe(0);
  });

  it('rename while stopped: the renamed file is read to its end, the new one from its start', async () => {
    const { dir, logs } = setup();
    const file = join(logs, 'app.log');
    writeFileSync(file, numbered('a', 0, 100));
    await tailOnce(dir);
    appendFileSync(file, numbered('a', 100, 50));
    renameSync(file, join(logs, 'app.log.1'));
    writeFileSync(file, numbered('b', 0, 30));
    expect((await tailOnce(dir)).rows).toBe(80);
    expect(messages(dir).sort()).toEqual([...range('a', 0, 150), ...range('b', 0, 30)].sort());
    const { cursors } = await storedPositions(dir);
    expect(cursors.map((c) => c.path).sort()).toEqual([file, join(logs, 'app.log.1')]);
  });

  it('gzip: archives are read when included; the .gz of content already read is recognised, not read again', async () => {
    const { dir, logs } = setup();
    writeFileSync(join(logs, 'old.log.2.gz'), gzipSync(numbered('z', 0, 40)));
    const file = join(logs, 'app.log');
    writeFileSync(file, numbered('a', 0, 100));
    expect((await tailOnce(dir)).rows).toBe(140);
    // Rotated while stopped with more lines, then compressed: only the unread lines are new.
    appendFileSync(file, numbered('a', 100, 20));
    execFileSync('gzip', [file]);
    writeFileSync(file, numbered('b', 0, 5));
    expect((await tailOnce(dir)).rows).toBe(25);
    expect((await tailOnce(dir)).rows).toBe(0);
    expect(messages(dir).sort()).toEqual([...range('z', 0, 40), ...range('a', 0, 120), ...range('b', 0, 5)].sort());
    const { cursors } = await storedPositions(dir);
    expect(cursors.filter((c) => c.gzip).map((c) => c.done)).toEqual([true, true]);
  });

  it('startAt end: files present at the first run are followed from their end; later files from their start', async () => {
    const { dir, logs } = setup();
    const file = join(logs, 'app.log');
    writeFileSync(file, numbered('old', 0, 50) + 'partial');
    writeFileSync(join(logs, 'old.gz'), gzipSync(numbered('z', 0, 10)));
    expect((await tailOnce(dir, { source: 'startAt: end' })).rows).toBe(0);
    appendFileSync(file, ' line\n' + numbered('new', 0, 3));
    writeFileSync(join(logs, 'later.log'), numbered('later', 0, 2));
    expect((await tailOnce(dir, { source: 'startAt: end' })).rows).toBe(6);
    expect(messages(dir).sort()).toEqual(['partial line', ...range('new', 0, 3), ...range('later', 0, 2)].sort());
  });

  it('include and exclude globs choose the files; links are followed; empty files wait for content', async () => {
    const { dir, logs } = setup();
    mkdirSync(join(logs, 'sub'));
    writeFileSync(join(logs, 'a.log'), 'a\n');
    writeFileSync(join(logs, 'sub/b.log'), 'b\n');
    writeFileSync(join(logs, 'sub/skip.log'), 'skip\n');
    writeFileSync(join(logs, 'c.txt'), 'c\n');
    writeFileSync(join(logs, 'empty.log'), '');
    // A link to a followed file is the same file (one inode); a link loop is walked once.
    symlinkSync(join(logs, 'a.log'), join(logs, 'current.log'));
    symlinkSync(logs, join(logs, 'sub/loop'));
    const opts = { source: 'include: ["**/*.log"], exclude: ["**/skip.*"]' };
    await tailOnce(dir, opts);
    expect(messages(dir).sort()).toEqual(['a', 'b']);
    appendFileSync(join(logs, 'empty.log'), 'no longer empty\n');
    await tailOnce(dir, opts);
    expect(messages(dir).sort()).toEqual(['a', 'b', 'no longer empty']);
  });

  it('a single file as path: that name only, globs characters in it taken literally', async () => {
    const { dir, logs } = setup();
    const file = join(logs, 'app[1].log');
    writeFileSync(file, 'mine\n');
    writeFileSync(join(logs, 'other.log'), 'not mine\n');
    await tailOnce(dir, { source: `path: "${file}"` });
    expect(messages(dir)).toEqual(['mine']);
  });

  it.each([
    ['truncate', ['short', 'x'.repeat(64), 'after'], 64],
    ['skip', ['short', 'after'], 200],
  ] as const)('maxLineBytes with %s: an over-long line is a counted row error and the file goes on', async (action, expected, preview) => {
    const { dir, logs } = setup();
    writeFileSync(join(logs, 'a.log'), `short\n${'x'.repeat(5000)}\nafter\n`);
    const summary = await tailOnce(dir, { source: `maxLineBytes: 64, maxLineAction: ${action}` });
    expect(summary.rowErrors).toBe(1);
    expect(messages(dir)).toEqual(expected);
    const [err] = deadLetters(dir);
    expect(err).toMatchObject({ code: 'PIPE_LINE_TOO_LONG', position: { row: 2 } });
    expect(String(err!.message)).toContain('line of 5000 bytes is longer than maxLineBytes (64)');
    expect(String(err!.raw)).toBe('x'.repeat(preview));
  });

  it('dry run: where each file would be read from; nothing read, nothing stored', async () => {
    const { dir, logs } = setup();
    writeFileSync(join(logs, 'a.log'), 'one\ntwo\n');
    writeFileSync(join(logs, 'c.log'), 'old\n');
    await tailOnce(dir);
    appendFileSync(join(logs, 'a.log'), 'three\n');
    writeFileSync(join(logs, 'b.log'), 'new\n');
    writeFileSync(join(logs, 'c.log'), 'rewritten\n');
    const store = new SqliteStore(join(dir, 'state.db'), 'h');
    const ctx: ReadContext = {
      signal: new AbortController().signal, scope: {}, once: true, log: quiet, artifactState: async () => undefined, recordSkipped: async () => undefined,
      position: (s) => store.position('t', s), savePosition: () => Promise.reject(new Error('a dry run stores nothing')),
    };
    const items = [];
    for await (const item of tail.create({ path: logs, include: ['**/*'], exclude: [] }).dryRun!(ctx)) items.push(item);
    await store.close();
    expect(items).toEqual([
      { uri: `file://${join(logs, 'a.log')}`, size: 14, state: 'from byte 8, line 2' },
      { uri: `file://${join(logs, 'b.log')}`, size: 4, state: 'new' },
      { uri: `file://${join(logs, 'c.log')}`, size: 10, state: 'changed: from its start' },
    ]);
    expect(messages(dir)).toEqual(['one', 'two', 'old']);
  });

  it('a copy already read is held, then read as a file of its own once its original stays in place', async () => {
    const { dir, logs } = setup();
    writeFileSync(join(logs, 'app.log'), numbered('a', 0, 10));
    await tailOnce(dir);
    copyFileSync(join(logs, 'app.log'), join(logs, 'backup.log'));
    // A single pass decides at once (a running tail waits rotateWait for a truncate of the original).
    expect((await tailOnce(dir)).rows).toBe(10);
    expect(readFileSync(join(logs, 'backup.log'), 'utf8')).toBe(numbered('a', 0, 10));
  });
});
