/**
 * Broken pipeline files, one per row: each must be reported with the exact YAML path and line.
 * `message` is matched as a substring unless `exact` is set.
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPipeline, validatePipelineFile } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/problems.js';
import { resolve } from './fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pipe-config-errors-'));
  await mkdir(path.join(dir, 'local'));
  // A real module that is a mapper, used where a sink is expected, and one that is not a component.
  await writeFile(
    path.join(dir, 'local', 'mapper.js'),
    `export const Mapper = { spec: { kind: 'mapper', type: 'upper', summary: 'x', options: {} }, create() { return {}; } };\n` +
      `export const NotAComponent = { spec: 1 };\n`,
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function problemsOf(yaml: string, env: Record<string, string> = {}) {
  const file = path.join(dir, `p-${Math.random().toString(36).slice(2)}.yml`);
  await writeFile(file, yaml);
  return (await validatePipelineFile(file, { env, resolve })).problems;
}

const SOURCE = 'source:\n  type: s3\n  bucket: b\n';
const SINK = 'sink:\n  type: jsonl\n  dir: ./out\n';

interface Case {
  name: string;
  yaml: string;
  env?: Record<string, string>;
  problems: Array<{ path: string; line: number; message: string; exact?: boolean }>;
}

const cases: Case[] = [
  {
    name: 'missing name',
    yaml: `${SOURCE}${SINK}`,
    problems: [{ path: 'name', line: 1, message: 'required: a string', exact: true }],
  },
  {
    name: 'missing source',
    yaml: `name: x\n${SINK}`,
    problems: [{ path: 'source', line: 1, message: 'required: a source such as source: { type: files, path: ./logs }', exact: true }],
  },
  {
    name: 'source with no value',
    yaml: `name: x\nsource:\n${SINK}`,
    problems: [{ path: 'source', line: 2, message: 'required: a source' }],
  },
  {
    name: 'missing sink',
    yaml: `name: x\n${SOURCE}`,
    problems: [{ path: 'sink', line: 1, message: 'required: a sink' }],
  },
  {
    name: 'unknown top-level key',
    yaml: `name: x\n${SOURCE}mapper: [cloudtrail]\n${SINK}`,
    problems: [{
      path: 'mapper', line: 5,
      message: 'unknown key (did you mean mappers?); expected name, state, source, loader, mappers, sink', exact: true,
    }],
  },
  {
    name: 'unknown source option',
    yaml: `name: x\n${SOURCE}  colour: red\n${SINK}`,
    problems: [{ path: 'source.colour', line: 5, message: 'unknown option for source s3; known options: bucket, prefix' }],
  },
  {
    name: 'misspelt option gets a hint',
    yaml: `name: x\n${SOURCE}  regoin: eu-west-1\n${SINK}`,
    problems: [{ path: 'source.regoin', line: 5, message: 'unknown option for source s3 (did you mean region?)' }],
  },
  {
    name: 'wrong type: bucket is a number',
    yaml: `name: x\nsource:\n  type: s3\n  bucket: 123\n${SINK}`,
    problems: [{ path: 'source.bucket', line: 4, message: 'expected a string, got 123', exact: true }],
  },
  {
    name: 'bad duration',
    yaml: `name: x\n${SOURCE}  poll: soon\n${SINK}`,
    problems: [{ path: 'source.poll', line: 5, message: "expected a duration such as 30s, got 'soon'", exact: true }],
  },
  {
    name: 'unitless duration is ambiguous',
    yaml: `name: x\n${SOURCE}  poll: 60\n${SINK}`,
    problems: [{ path: 'source.poll', line: 5, message: 'expected a duration with a unit such as 60s or 60ms, got 60', exact: true }],
  },
  {
    name: 'duration below min',
    yaml: `name: x\n${SOURCE}  poll: 500ms\n${SINK}`,
    problems: [{ path: 'source.poll', line: 5, message: "expected at least 1s, got '500ms'", exact: true }],
  },
  {
    name: 'bad size',
    yaml: `name: x\n${SOURCE}${SINK}  maxBytes: 64 megs\n`,
    problems: [{ path: 'sink.maxBytes', line: 8, message: "expected a size such as 64MiB (KiB/MiB/GiB are 1024-based, KB/MB/GB 1000-based), got '64 megs'", exact: true }],
  },
  {
    name: 'ambiguous single-letter size',
    yaml: `name: x\n${SOURCE}${SINK}  maxBytes: 64M\n`,
    problems: [{ path: 'sink.maxBytes', line: 8, message: "got '64M'" }],
  },
  {
    name: 'bad enum',
    yaml: `name: x\n${SOURCE}${SINK}  partition: weekly\n`,
    problems: [{ path: 'sink.partition', line: 8, message: "expected one of none, day, hour, got 'weekly'", exact: true }],
  },
  {
    name: 'integer below min',
    yaml: `name: x\n${SOURCE}  concurrency: 0\n${SINK}`,
    problems: [{ path: 'source.concurrency', line: 5, message: 'expected at least 1, got 0', exact: true }],
  },
  {
    name: 'integer given a fraction',
    yaml: `name: x\n${SOURCE}  concurrency: 2.5\n${SINK}`,
    problems: [{ path: 'source.concurrency', line: 5, message: 'expected an integer, got 2.5', exact: true }],
  },
  {
    name: 'boolean given a string',
    yaml: `name: x\n${SOURCE}  forcePathStyle: yes\n${SINK}`,
    problems: [{ path: 'source.forcePathStyle', line: 5, message: "expected true or false, got 'yes'", exact: true }],
  },
  {
    name: 'strings given a single string',
    yaml: `name: x\n${SOURCE}  include: "**/*.gz"\n${SINK}`,
    problems: [{ path: 'source.include', line: 5, message: "expected a list of strings, got '**/*.gz'", exact: true }],
  },
  {
    name: 'a list item of the wrong type',
    yaml: `name: x\n${SOURCE}  exclude:\n    - a\n    - 7\n${SINK}`,
    problems: [{ path: 'source.exclude[1]', line: 7, message: 'expected a string, got 7', exact: true }],
  },
  {
    name: 'object with a nested value',
    yaml: `name: x\n${SOURCE}  tags:\n    env: prod\n    deep: { a: 1 }\n${SINK}`,
    problems: [{ path: 'source.tags.deep', line: 7, message: 'expected a plain value, got a mapping', exact: true }],
  },
  {
    name: 'missing required option',
    yaml: `name: x\n${SOURCE}sink:\n  type: jsonl\n`,
    problems: [{ path: 'sink.dir', line: 5, message: 'required: a string', exact: true }],
  },
  {
    name: 'unknown mapper type',
    yaml: `name: x\n${SOURCE}mappers:\n  - cloudtrial\n${SINK}`,
    problems: [{
      path: 'mappers[0].type', line: 6,
      message: "unknown mapper type 'cloudtrial' (did you mean cloudtrail?); known mapper types: cloudtrail, filter, " +
        'or a module specifier such as ./my-mapper.js#Export or my-package#Export',
      exact: true,
    }],
  },
  {
    name: 'unknown sink type',
    yaml: `name: x\n${SOURCE}sink:\n  type: parquet\n  dir: out\n`,
    problems: [{ path: 'sink.type', line: 6, message: "unknown sink type 'parquet'; known sink types: jsonl, stdout" }],
  },
  {
    name: 'a type of another kind',
    yaml: `name: x\n${SOURCE}sink: { type: filter, where: x }\n`,
    problems: [{ path: 'sink.type', line: 5, message: "unknown sink type 'filter' (filter is a mapper)" }],
  },
  {
    name: 'unset variable',
    yaml: `name: x\nsource:\n  type: s3\n  bucket: \${TRAIL_BUCKET}\n${SINK}`,
    problems: [{
      path: 'source.bucket', line: 4,
      message: 'variable TRAIL_BUCKET is not set and has no default (write ${TRAIL_BUCKET:-default} to give one)', exact: true,
    }],
  },
  {
    name: 'unterminated variable reference',
    yaml: `name: x\n${SOURCE}  prefix: "logs/\${YEAR"\n${SINK}`,
    problems: [{ path: 'source.prefix', line: 5, message: "'${' without a closing '}'" }],
  },
  {
    name: 'YAML syntax error',
    yaml: `name: x\n${SOURCE}mappers: [cloudtrail\n${SINK}`,
    // The parser notices the unclosed [ where the next key starts.
    problems: [{ path: '', line: 6, message: 'YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]', exact: true }],
  },
  {
    name: 'duplicate key',
    yaml: `name: x\n${SOURCE}${SINK}name: y\n`,
    problems: [{ path: '', line: 8, message: 'YAML syntax: Map keys must be unique', exact: true }],
  },
  {
    name: 'unquoted variable in a flow mapping gets a hint',
    yaml: `name: x\nsource: { type: s3, bucket: \${B} }\n${SINK}`,
    problems: [{ path: '', line: 2, message: 'quote values that use ${…}' }],
  },
  {
    name: 'empty file',
    yaml: '# nothing\n',
    problems: [{ path: '', line: 1, message: 'expected a mapping with name, source and sink, got an empty file', exact: true }],
  },
  {
    name: 'a list instead of a mapping',
    yaml: '- name: x\n',
    problems: [{ path: '', line: 1, message: 'expected a mapping with name, source and sink, got a list', exact: true }],
  },
  {
    name: 'bad name characters',
    yaml: `name: cloud trail\n${SOURCE}${SINK}`,
    problems: [{ path: 'name', line: 1, message: "expected letters, digits, '.', '_' or '-', got 'cloud trail'", exact: true }],
  },
  {
    name: 'numeric name must be quoted',
    yaml: `name: 2024\n${SOURCE}${SINK}`,
    problems: [{ path: 'name', line: 1, message: 'expected a string, got 2024 (quote it)', exact: true }],
  },
  {
    name: 'mapper given as a number',
    yaml: `name: x\n${SOURCE}mappers:\n  - cloudtrail\n  - 42\n${SINK}`,
    problems: [{ path: 'mappers[1]', line: 7, message: 'expected a mapper type name or a mapping with a type, got 42', exact: true }],
  },
  {
    name: 'mappers not a list',
    yaml: `name: x\n${SOURCE}mappers: cloudtrail\n${SINK}`,
    problems: [{ path: 'mappers', line: 5, message: 'expected a list of mappers, such as [cloudtrail]', exact: true }],
  },
  {
    name: 'loader object without type',
    yaml: `name: x\n${SOURCE}loader:\n  - gzip\n  - { path: Records }\n${SINK}`,
    problems: [{ path: 'loader[1].type', line: 7, message: 'required: the loader type, a built-in name or a module specifier', exact: true }],
  },
  {
    name: 'options of a mapper in a flow mapping',
    yaml: `name: x\n${SOURCE}mappers:\n  - { type: filter }\n  - { type: filter, where: a, wher: b }\n${SINK}`,
    problems: [
      { path: 'mappers[0].where', line: 6, message: 'required: a string', exact: true },
      { path: 'mappers[1].wher', line: 7, message: 'unknown option for mapper filter (did you mean where?); known options: where', exact: true },
    ],
  },
  {
    name: 'two problems in one file',
    yaml: `name: x\nsource:\n  type: s3\n  bucket: b\n  concurrency: many\n${SINK}  partition: weekly\n`,
    problems: [
      { path: 'source.concurrency', line: 5, message: "expected an integer, got 'many'", exact: true },
      { path: 'sink.partition', line: 9, message: "expected one of none, day, hour, got 'weekly'", exact: true },
    ],
  },
  {
    name: 'many problems across the file, in line order',
    yaml: `extra: 1\nsource:\n  type: s3\n  bucket: [a]\nmappers: [nope]\n${SINK}  gzip: maybe\n`,
    problems: [
      { path: 'extra', line: 1, message: 'unknown key' },
      { path: 'name', line: 1, message: 'required: a string', exact: true },
      { path: 'source.bucket', line: 4, message: 'expected a string, got a list', exact: true },
      { path: 'mappers[0].type', line: 5, message: "unknown mapper type 'nope'" },
      { path: 'sink.gzip', line: 9, message: "expected true or false, got 'maybe'", exact: true },
    ],
  },
  {
    name: 'number out of range and of the wrong type',
    yaml: `name: x\n${SOURCE}  ratio: 2\n${SINK}  maxRows: lots\n`,
    problems: [
      { path: 'source.ratio', line: 5, message: 'expected at most 1, got 2', exact: true },
      { path: 'sink.maxRows', line: 9, message: "expected an integer, got 'lots'", exact: true },
    ],
  },
  {
    name: 'object and string-or-strings given the wrong shape',
    yaml: `name: x\n${SOURCE}  tags: 5\n  logGroup: { a: b }\n${SINK}`,
    problems: [
      { path: 'source.tags', line: 5, message: 'expected a mapping of names to plain values, got 5', exact: true },
      { path: 'source.logGroup', line: 6, message: 'expected a string or a list of strings, got a mapping', exact: true },
    ],
  },
  {
    name: 'a list or mapping used as a key',
    yaml: `name: x\n${SOURCE}  ? [a, b]\n  : 1\n${SINK}`,
    problems: [{ path: 'source', line: 5, message: 'keys must be plain names, not lists or mappings', exact: true }],
  },
  {
    name: 'unknown alias',
    yaml: `name: x\n${SOURCE}  region: *nowhere\n${SINK}`,
    problems: [{ path: 'source.region', line: 5, message: 'unknown alias *nowhere', exact: true }],
  },
  {
    name: 'alias that refers to itself',
    yaml: `name: x\n${SOURCE}  include: &globs [a, *globs]\n${SINK}`,
    problems: [{ path: 'source.include[1]', line: 5, message: 'alias *globs refers to itself', exact: true }],
  },
  {
    name: 'unset variable as the sink type says nothing more',
    yaml: `name: x\n${SOURCE}sink: \${SINK_TYPE}\n`,
    problems: [{ path: 'sink', line: 5, message: 'variable SINK_TYPE is not set' }],
  },
  {
    name: 'a component given as a list',
    yaml: `name: x\n${SOURCE}sink: [jsonl]\n`,
    problems: [{ path: 'sink', line: 5, message: 'expected a sink type name or a mapping with a type, got a list', exact: true }],
  },
  {
    name: 'a type that is not a string',
    yaml: `name: x\n${SOURCE}sink: { type: 3 }\n`,
    problems: [{ path: 'sink.type', line: 5, message: 'expected a sink type name, got 3', exact: true }],
  },
  {
    name: 'state that is not a string',
    yaml: `name: x\nstate: [a]\n${SOURCE}${SINK}`,
    problems: [{ path: 'state', line: 2, message: 'expected a string, got a list', exact: true }],
  },
  {
    name: 'relative module specifier that does not exist',
    yaml: `name: x\n${SOURCE}mappers: [./nope.js#Mapper]\n${SINK}`,
    problems: [{ path: 'mappers[0].type', line: 5, message: "cannot import './nope.js':" }],
  },
  {
    name: 'package that is not installed',
    yaml: `name: x\n${SOURCE}mappers: ['no-such-pipe-pkg#Mapper']\n${SINK}`,
    problems: [{ path: 'mappers[0].type', line: 5, message: "cannot find module 'no-such-pipe-pkg' from " }],
  },
  {
    name: 'module without that export',
    yaml: `name: x\n${SOURCE}mappers: [./local/mapper.js#Mappr]\n${SINK}`,
    problems: [{
      path: 'mappers[0].type', line: 5,
      message: "module './local/mapper.js' has no export 'Mappr'; it exports: Mapper, NotAComponent", exact: true,
    }],
  },
  {
    name: 'export that is not a component',
    yaml: `name: x\n${SOURCE}mappers: [./local/mapper.js#NotAComponent]\n${SINK}`,
    problems: [{
      path: 'mappers[0].type', line: 5,
      message: "export 'NotAComponent' of './local/mapper.js' is not a component: expected an object with spec and create", exact: true,
    }],
  },
  {
    name: 'a module of the wrong kind',
    yaml: `name: x\n${SOURCE}sink:\n  type: ./local/mapper.js#Mapper\n`,
    problems: [{
      path: 'sink.type', line: 6,
      message: "'./local/mapper.js#Mapper' is a mapper, but a sink is expected here", exact: true,
    }],
  },
];

describe('broken pipeline files', () => {
  it.each(cases)('$name', async ({ yaml, env, problems: expected }) => {
    const problems = await problemsOf(yaml, env);
    expect(problems.map((p) => ({ path: p.path, line: p.line }))).toEqual(expected.map((p) => ({ path: p.path, line: p.line })));
    expected.forEach((want, i) => {
      if (want.exact) expect(problems[i]!.message).toBe(want.message);
      else expect(problems[i]!.message).toContain(want.message);
    });
  });
});

describe('ConfigError', () => {
  it('lists every problem as <file>:<line>: <path>: <message>, one per line', async () => {
    const file = path.join(dir, 'two.yml');
    await writeFile(file, `name: x\nsource:\n  type: s3\n  bucket: b\n  poll: soon\n${SINK}  partition: weekly\n`);
    const err = await loadPipeline(file, { env: {}, resolve }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const configError = err as ConfigError;
    expect(configError.code).toBe('PIPE_CONFIG_INVALID');
    expect(configError.file).toBe(file);
    expect(configError.message).toBe(
      `${file}:5: source.poll: expected a duration such as 30s, got 'soon'\n` +
        `${file}:9: sink.partition: expected one of none, day, hour, got 'weekly'`,
    );
    expect(configError.problems).toHaveLength(2);
  });

  it('names a file that does not exist', async () => {
    const file = path.join(dir, 'missing.yml');
    const err = (await loadPipeline(file, { env: {}, resolve }).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.code).toBe('PIPE_CONFIG_INVALID');
    expect(err.message).toBe(`${file}: cannot read the pipeline file: no such file`);
    expect(err.problems).toEqual([{ path: '', line: 0, message: 'cannot read the pipeline file: no such file' }]);
  });

  it('names a directory given as a file', async () => {
    const err = (await loadPipeline(dir, { env: {}, resolve }).catch((e: unknown) => e)) as ConfigError;
    expect(err.message).toBe(`${dir}: cannot read the pipeline file: it is a directory`);
  });

  it('reports a resolver that throws as a problem, and one that returns undefined as an unknown type', async () => {
    const file = path.join(dir, 'custom.yml');
    await writeFile(file, `name: x\n${SOURCE}${SINK}`);
    const throwing = await validatePipelineFile(file, {
      env: {},
      resolve: async (kind) => {
        if (kind === 'source') throw new Error('registry offline');
        return undefined;
      },
    });
    expect(throwing.problems).toEqual([
      { path: 'source.type', line: 3, message: "cannot load source 's3': registry offline" },
      { path: 'sink.type', line: 6, message: "unknown sink type 'jsonl'" },
    ]);
  });
});
