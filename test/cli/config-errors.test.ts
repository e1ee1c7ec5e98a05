/** Broken pipeline files against the real registry, through the real CLI: exit 2, the exact path and line named. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const OK_SOURCE = 'source: { type: files, path: /tmp }';
const OK_SINK = 'sink: { type: jsonl, dir: /tmp/out }';

const cases: Array<[string, string, string]> = [
  ['missing name', `${OK_SOURCE}\n${OK_SINK}\n`, ':1: name:'],
  ['unknown top-level key', `name: a\n${OK_SOURCE}\n${OK_SINK}\nsinks: {}\n`, ':4: sinks:'],
  ['missing source path', `name: a\nsource: { type: files }\n${OK_SINK}\n`, ':2: source.path:'],
  ['unknown source option', `name: a\nsource: { type: files, path: /tmp, recursive: true }\n${OK_SINK}\n`, ':2: source.recursive:'],
  ['unknown source type', `name: a\nsource: { type: ftp, path: /tmp }\n${OK_SINK}\n`, ':2: source.type:'],
  ['bad size', `name: a\n${OK_SOURCE}\nsink: { type: jsonl, dir: /tmp/o, maxBytes: huge }\n`, ':3: sink.maxBytes:'],
  ['bad duration', `name: a\n${OK_SOURCE}\nsink:\n  type: jsonl\n  dir: /tmp/o\n  flushInterval: soon\n`, ':6: sink.flushInterval:'],
  ['bad enum', `name: a\n${OK_SOURCE}\nsink: { type: jsonl, dir: /tmp/o, partition: week }\n`, ':3: sink.partition:'],
  ['unknown mapper', `name: a\n${OK_SOURCE}\nmappers:\n  - cloudtrail\n  - cloudtrial\n${OK_SINK}\n`, ':5: mappers[1]'],
  ['filter syntax', `name: a\n${OK_SOURCE}\nmappers:\n  - { type: filter, where: 'a == ' }\n${OK_SINK}\n`, ':4: mappers[0]'],
  ['vpcflow skipNoData type', `name: a\n${OK_SOURCE}\nmappers:\n  - { type: vpcflow, skipNoData: maybe }\n${OK_SINK}\n`, ':4: mappers[0].skipNoData:'],
  ['unset variable', `name: a\nsource: { type: files, path: "\${PIPE_TEST_UNSET_DIR}" }\n${OK_SINK}\n`, 'PIPE_TEST_UNSET_DIR'],
  ['loader without type', `name: a\n${OK_SOURCE}\nloader:\n  - { path: Records }\n${OK_SINK}\n`, ':4: loader[0]'],
  ['yaml syntax', `name: a\nsource: { type: files, path: /tmp\n${OK_SINK}\n`, ':'],
  ['sink where a mapper goes', `name: a\n${OK_SOURCE}\nmappers: [jsonl]\n${OK_SINK}\n`, ':3: mappers[0]'],
  ['loader chain that ends before records', `name: a\n${OK_SOURCE}\nloader: [gzip]\n${OK_SINK}\n`, 'loader: the last loader must produce records'],
];

describe('configuration errors through the CLI', () => {
  it.each(cases)('%s', async (_name, yaml, expected) => {
    const dir = tempDir();
    const file = join(dir, 'p.yml');
    writeFileSync(file, yaml);
    const validate = await runCli(['validate', file]);
    expect(validate.code).toBe(2);
    expect(validate.stderr).toContain(expected);
    expect(validate.stderr).toContain(file);
    const run = await runCli(['run', file, '--state', join(dir, 's.db')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(expected);
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  // A third-party component's own create() may refuse its options; validate and run then exit 2
  // naming the file, line and place, as for any configuration error (a loader's once exited 1 as
  // internal, and validate once called such a file ok).
  it.each([
    ['loader', 'loader:\n  - ./bad.mjs#BadLoader\n', ':4: loader[0] ./bad.mjs#BadLoader: needs a dictionary file'],
    ['mapper', 'mappers:\n  - cloudtrail\n  - ./bad.mjs#BadMapper\n', ':5: mappers[1] ./bad.mjs#BadMapper: needs a dictionary file'],
  ])('a third-party %s whose create throws: exit 2, file, line and place named', async (_kind, block, expected) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.mjs'), `
const refuse = () => { throw new Error('needs a dictionary file'); };
export const BadLoader = { spec: { kind: 'loader', type: 'bad', summary: 'refuses', options: {} }, create: refuse };
export const BadMapper = { spec: { kind: 'mapper', type: 'bad', summary: 'refuses', options: {} }, create: refuse };
`);
    const file = join(dir, 'p.yml');
    writeFileSync(file, `name: a\n${OK_SOURCE}\n${block}${OK_SINK}\n`);
    const validate = await runCli(['validate', file]);
    expect(validate.code).toBe(2);
    expect(validate.stdout).not.toContain('ok');
    expect(validate.stderr).toContain(`${file}${expected} [PIPE_CONFIG_INVALID]`);
    const run = await runCli(['run', file, '--state', join(dir, 's.db')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${file}${expected}`);
    expect(run.stderr).toContain('PIPE_CONFIG_INVALID');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('reports every problem of a file at once', async () => {
    const dir = tempDir();
    const file = join(dir, 'p.yml');
    writeFileSync(file, `name: a\nsource: { type: files }\nsink: { type: jsonl, dir: /tmp/o, maxRows: -5, gzip: sometimes }\n`);
    const r = await runCli(['validate', file]);
    expect(r.stderr.trim().split('\n').length).toBeGreaterThanOrEqual(3);
    for (const p of ['source.path', 'sink.maxRows', 'sink.gzip']) expect(r.stderr).toContain(p);
  });
});
