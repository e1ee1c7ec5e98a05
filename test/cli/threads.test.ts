/**
 * How the worker pool hands out artifacts, seen through `--verbose` (each hand-out is a debug line
 * naming the thread and how many artifacts it then holds): no thread holds more than two (the one
 * it decodes and the next), and with two threads both get work from the start. Artifacts are opened
 * after a thread is chosen; choices made while others were still opening once gave one thread three
 * of the first four artifacts and left the other idle.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readSink, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const HEADER = 'version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status';

describe('worker threads', () => {
  it('hold at most two artifacts each, and both get work from the start', async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    mkdirSync(data);
    const files = 8;
    const lines = 8000;
    for (let f = 0; f < files; f++) {
      const body = [HEADER];
      for (let i = 0; i < lines; i++) body.push(`2 123456789012 eni-${f}-${i} 10.0.0.${i % 250} 10.1.0.1 ${1024 + i} 443 6 ${i} ${i * 60} ${1709251200 + i} ${1709251260 + i} ACCEPT OK`);
      writeFileSync(join(data, `vpc-${f}.log.gz`), gzipSync(body.join('\n') + '\n'));
    }
    const file = join(dir, 'p.yml');
    writeFileSync(file, `name: threads\nstate: ${join(dir, 's.db')}\nsource: { type: files, path: ${data} }\nmappers: [vpcflow]\nsink: { type: jsonl, dir: ${join(dir, 'out')} }\n`);
    const r = await runCli(['run', file, '--no-progress', '--threads', '2', '--verbose', '--log-format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const handOuts = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string })
      .map((l) => /^decoding (\S+) on thread (\d+) \((\d+) held\)$/.exec(l.msg))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ uri: m[1]!, thread: Number(m[2]), held: Number(m[3]) }));
    expect(handOuts).toHaveLength(files);
    for (const h of handOuts) expect(h.held, JSON.stringify(handOuts)).toBeLessThanOrEqual(2);
    expect(new Set(handOuts.slice(0, 4).map((h) => h.thread))).toEqual(new Set([1, 2]));
    expect(readSink(join(dir, 'out'))).toHaveLength(files * lines);
  });
});
