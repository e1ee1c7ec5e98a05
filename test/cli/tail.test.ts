/**
 * `pipe tail <dir>` as users run it: the real CLI in a child process, to stdout or into --out,
 * with a mapper, stopped by SIGINT (exit 130 after the flush) or killed with SIGKILL at random
 * instants while a writer appends, rotations happen and a partial line waits for its end.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tailPipelineName } from '../../src/commands/tail.js';
import { collect, idCounts, readSink, ROOT, runCli, spawnCli } from '../helpers/cli.js';
import { prng } from '../helpers/data.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../sources/tail-helpers.js';

const WRITER = join(ROOT, 'test/sources/tail-writer.mjs');
const SEED = Number(process.env.PIPE_CHAOS_SEED ?? 20240301);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('pipe tail', () => {
  it('follows a directory to stdout until SIGINT, exits 130, and resumes where it stopped', async () => {
    const dir = tempDir();
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    writeFileSync(join(logs, 'a.log'), 'one\ntwo\n');
    const state = join(dir, 'state.db');
    const child = spawnCli(['tail', logs, '--state', state, '--no-progress'], { cwd: dir });
    const done = collect(child);
    let out = '';
    child.stdout!.on('data', (d: string) => (out += d));
    await waitFor('two rows on stdout', () => out.split('\n').filter(Boolean).length, (n) => n === 2);
    appendFileSync(join(logs, 'a.log'), 'three\n');
    writeFileSync(join(logs, 'b.log'), 'four\n');
    await waitFor('four rows on stdout', () => out.split('\n').filter(Boolean).length, (n) => n === 4);
    child.kill('SIGINT');
    const r = await done;
    expect(r.code, r.stderr).toBe(130);
    const rows = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((x) => x.message).sort()).toEqual(['four', 'one', 'three', 'two']);
    expect(rows.find((x) => x.message === 'four')!._source).toBe(`file://${join(logs, 'b.log')}`);
    expect(r.stderr).toMatch(new RegExp(`${tailPipelineName(logs)}: 0 artifacts, 4 rows`));
    appendFileSync(join(logs, 'a.log'), 'five\n');
    const again = await runCli(['tail', logs, '--state', state, '--once', '--no-progress']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(['five']);
  });

  it('--out and --mapper: VPC flow lines mapped into JSONL chunk files', async () => {
    const dir = tempDir();
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    writeFileSync(join(logs, 'flow.log'), '2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n');
    const r = await runCli(['tail', logs, '--mapper', 'vpcflow', '--out', join(dir, 'out'), '--state', join(dir, 's.db'), '--once', '--no-progress'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(readSink(join(dir, 'out'))).toMatchObject([{ account_id: '123456789010', srcaddr: '172.31.16.139', dstport: 22, bytes: 4249, action: 'ACCEPT' }]);
  });

  it('pipe run --dry-run on a tail pipeline says where each file would be read from, and reads nothing', async () => {
    const dir = tempDir();
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    writeFileSync(join(logs, 'a.log'), 'one\ntwo\n');
    const yml = join(dir, 't.yml');
    writeFileSync(yml, `name: t\nstate: ${join(dir, 's.db')}\nsource: { type: tail, path: ${logs} }\nsink: { type: jsonl, dir: ${join(dir, 'out')} }\n`);
    expect((await runCli(['run', yml, '--once', '--no-progress'])).code).toBe(0);
    appendFileSync(join(logs, 'a.log'), 'three\n');
    writeFileSync(join(logs, 'b.log'), 'new\n');
    const dry = await runCli(['run', yml, '--dry-run', '--no-progress']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toContain(`would collect file://${join(logs, 'a.log')} (14 B) [from byte 8, line 2]`);
    expect(dry.stderr).toContain(`would collect file://${join(logs, 'b.log')} (4 B)\n`);
    expect(readSink(join(dir, 'out'))).toHaveLength(2);
  });

  it('usage errors exit 2 naming the problem', async () => {
    const dir = tempDir();
    const missing = await runCli(['tail', join(dir, 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('not a directory');
    const unknown = await runCli(['tail', dir, '--mapper', 'cloudtrial']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('did you mean cloudtrail?');
    const needsOptions = await runCli(['tail', dir, '--mapper', 'filter']);
    expect(needsOptions.code).toBe(2);
    expect(needsOptions.stderr).toContain('--mapper filter.where: required');
    expect((await runCli(['validate', join(ROOT, 'pipelines/tail-local.yml')])).code).toBe(0);
    expect((await runCli(['list', 'tail'])).stdout).toContain('partialLineTimeout (duration, default "5s"');
  });

  it('kill -9 at random instants, rotations and a partial line while stopped: every line exactly once, the partial line whole', async () => {
    const dir = tempDir();
    const logs = join(dir, 'logs');
    const out = join(dir, 'out');
    mkdirSync(logs);
    const app = join(logs, 'app.log');
    const side = join(logs, 'side.log');
    writeFileSync(side, 'side 0\nthe partial li');
    const writer = spawn(process.execPath, [WRITER, app, '2000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let wout = '';
    writer.stdout.setEncoding('utf8').on('data', (d: string) => (wout += d));
    const random = prng(SEED);
    const args = ['tail', logs, '--include', 'app.log*', '--include', 'side.log', '--out', out, '--state', join(dir, 'state.db'), '--no-progress'];
    for (let round = 0; round < 4; round++) {
      const child = spawnCli(args);
      const done = collect(child);
      await sleep(500 + Math.floor(random() * 700));
      child.kill('SIGKILL');
      const r = await done;
      expect(r.signal, r.stderr).toBe('SIGKILL');
      const rows = readSink(out);
      expect(idCounts(rows).size).toBe(rows.length);
      // While stopped: the partial line ends, a rename rotation, a copytruncate (writer paused: no copy→truncate window).
      if (round === 0) appendFileSync(side, 'ne, completed\nside 1\n');
      if (round === 1) {
        renameSync(app, `${app}.1`);
        writer.kill('SIGHUP');
      }
      if (round === 2) {
        writer.kill('SIGSTOP');
        copyFileSync(app, `${app}.copy`);
        truncateSync(app, 0);
        writer.kill('SIGCONT');
      }
    }
    writer.kill('SIGTERM');
    await new Promise((r) => writer.on('exit', r));
    const written = (JSON.parse(wout.split('\n').find((l) => l.startsWith('{'))!) as { lines: number }).lines;
    const final = spawnCli(args);
    const finalDone = collect(final);
    const expected = written + 3;
    await waitFor('every line', () => readSink(out).length, (n) => n >= expected, 20_000);
    await sleep(300);
    final.kill('SIGINT');
    expect((await finalDone).code).toBe(130);
    const rows = readSink(out);
    const messages = rows.map((x) => String(x.message));
    const numbers = messages.filter((m) => m.startsWith('line ')).map((m) => Number(m.split(' ')[1]));
    expect(new Set(numbers).size).toBe(numbers.length);
    expect(numbers.length).toBe(written);
    expect(Math.max(...numbers)).toBe(written - 1);
    expect(messages.filter((m) => !m.startsWith('line ')).sort()).toEqual(['side 0', 'side 1', 'the partial line, completed']);
    expect(idCounts(rows).size).toBe(rows.length);
  });
});
