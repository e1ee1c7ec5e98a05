/** Pipelines that load: defaults, normalized units, variables, shorthand forms and local modules. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPipeline, validatePipelineText } from '../../src/config/load.js';
import { filterMapper, jsonlSink, resolve, s3Source } from './fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pipe-config-load-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(yaml: string, env: Record<string, string> = {}, name = 'pipeline.yml') {
  const file = path.join(dir, name);
  await writeFile(file, yaml);
  return loadPipeline(file, { env, resolve });
}

describe('loadPipeline', () => {
  it('loads the full shape, applying defaults and normalizing durations and sizes', async () => {
    const cfg = await load(
      [
        'name: cloudtrail',
        'state: ./.pipe/state.db',
        'source:',
        '  type: s3',
        '  bucket: my-trail',
        '  layout: cloudtrail',
        '  exclude: ["**/CloudTrail-Digest/**"]',
        '  poll: 1m30s',
        'loader:',
        '  - gzip',
        '  - { type: json, path: Records }',
        'mappers:',
        '  - cloudtrail',
        "  - { type: filter, where: 'eventSource != \"kms.amazonaws.com\"' }",
        'sink:',
        '  type: jsonl',
        '  dir: ./out/cloudtrail',
        '  maxBytes: 10KB',
        '  flushInterval: 500ms',
        '',
      ].join('\n'),
    );
    expect(cfg.name).toBe('cloudtrail');
    expect(cfg.file).toBe(path.join(dir, 'pipeline.yml'));
    expect(cfg.baseDir).toBe(dir);
    expect(cfg.state).toBe('./.pipe/state.db');
    expect(cfg.source).toEqual({
      type: 's3',
      path: 'source',
      line: 3,
      module: s3Source,
      options: {
        bucket: 'my-trail',
        layout: 'cloudtrail',
        exclude: ['**/CloudTrail-Digest/**'],
        poll: 90_000,
        prefix: '',
        forcePathStyle: false,
        include: ['**'],
        concurrency: 8,
      },
    });
    expect(cfg.loader?.map((l) => [l.type, l.path, l.line, l.options])).toEqual([
      ['gzip', 'loader[0]', 10, {}],
      ['json', 'loader[1]', 11, { path: 'Records' }],
    ]);
    expect(cfg.mappers.map((m) => [m.type, m.path, m.line, m.options])).toEqual([
      ['cloudtrail', 'mappers[0]', 13, {}],
      ['filter', 'mappers[1]', 14, { where: 'eventSource != "kms.amazonaws.com"' }],
    ]);
    expect(cfg.mappers[1]!.module).toBe(filterMapper);
    expect(cfg.sink.module).toBe(jsonlSink);
    expect(cfg.sink.options).toEqual({
      dir: './out/cloudtrail',
      maxRows: 100000,
      maxBytes: 10_000,
      flushInterval: 500,
      gzip: false,
      partition: 'none',
    });
  });

  it('gives defaults of its own to each pipeline (no shared arrays)', async () => {
    const yaml = 'name: a\nsource: { type: s3, bucket: b }\nsink: stdout\n';
    const first = await load(yaml, {}, 'a.yml');
    (first.source.options.include as string[]).push('mutated');
    const second = await load(yaml, {}, 'b.yml');
    expect(second.source.options.include).toEqual(['**']);
    expect(s3Source.spec.options.include!.default).toEqual(['**']);
  });

  it('accepts a sink or source given by type name alone, and leaves loader and state unset', async () => {
    const cfg = await load('name: x\nsource: { type: s3, bucket: b }\nmappers: [cloudtrail]\nsink: stdout\n');
    expect(cfg.sink).toMatchObject({ type: 'stdout', path: 'sink', line: 4, options: {} });
    expect(cfg.loader).toBeUndefined();
    expect(cfg.state).toBeUndefined();
    expect(cfg.mappers.map((m) => m.type)).toEqual(['cloudtrail']);
  });

  it('keeps an empty loader list as given and defaults mappers to an empty list', async () => {
    const cfg = await load('name: x\nsource: { type: s3, bucket: b }\nloader: []\nsink: stdout\n');
    expect(cfg.loader).toEqual([]);
    expect(cfg.mappers).toEqual([]);
  });

  it('follows YAML anchors and aliases', async () => {
    const cfg = await load('name: x\nsource: { type: s3, bucket: &b trail, prefix: *b }\nsink: stdout\n');
    expect(cfg.source.options).toMatchObject({ bucket: 'trail', prefix: 'trail' });
  });

  it('keeps a state URL as written', async () => {
    const cfg = await load('name: x\nstate: postgres://pipe@db:5432/pipe\nsource: { type: s3, bucket: b }\nsink: stdout\n');
    expect(cfg.state).toBe('postgres://pipe@db:5432/pipe');
  });

  it('keeps string-or-strings as given and object options as mappings', async () => {
    const one = await load('name: x\nsource: { type: s3, bucket: b, logGroup: /aws/a, tags: { env: prod, n: 2 } }\nsink: stdout\n');
    expect(one.source.options.logGroup).toBe('/aws/a');
    expect(one.source.options.tags).toEqual({ env: 'prod', n: 2 });
    const many = await load('name: x\nsource: { type: s3, bucket: b, logGroup: [/aws/a, /aws/b] }\nsink: stdout\n');
    expect(many.source.options.logGroup).toEqual(['/aws/a', '/aws/b']);
  });
});

describe('variables', () => {
  const base = (source: string) => `name: x\nsource:\n  type: s3\n${source}sink: { type: jsonl, dir: out }\n`;

  it('expands ${VAR} and ${VAR:-default} in values', async () => {
    const cfg = await load(base('  bucket: ${TRAIL_BUCKET}\n  region: ${REGION:-us-east-1}\n  prefix: logs/${YEAR:-2024}/\n'), {
      TRAIL_BUCKET: 'my-trail',
    });
    expect(cfg.source.options).toMatchObject({ bucket: 'my-trail', region: 'us-east-1', prefix: 'logs/2024/' });
  });

  it('writes $${ as a literal ${ and never re-expands what it substituted', async () => {
    const cfg = await load(base('  bucket: "$${version} $${account-id}"\n  prefix: ${P}\n'), { P: '${HOME}' });
    expect(cfg.source.options.bucket).toBe('${version} ${account-id}');
    expect(cfg.source.options.prefix).toBe('${HOME}');
  });

  it('does not expand keys', async () => {
    const result = await validatePipelineText(base('  bucket: b\n  ${KEY}: 1\n'), path.join(dir, 'k.yml'), { env: { KEY: 'region' }, resolve });
    expect(result.problems.map((p) => [p.path, p.line])).toEqual([['source.${KEY}', 5]]);
  });

  it('reads variables as numbers and booleans where the option wants them', async () => {
    const cfg = await load(base('  bucket: b\n  concurrency: ${C:-16}\n  forcePathStyle: ${PS}\n  ratio: ${R}\n'), { PS: 'true', R: '0.5' });
    expect(cfg.source.options).toMatchObject({ concurrency: 16, forcePathStyle: true, ratio: 0.5 });
  });

  it('still reports a variable that is not a number where one is wanted', async () => {
    const result = await validatePipelineText(base('  bucket: b\n  concurrency: ${C}\n'), path.join(dir, 'c.yml'), { env: { C: 'lots' }, resolve });
    expect(result.problems).toEqual([{ path: 'source.concurrency', line: 5, message: "expected an integer, got 'lots'" }]);
  });

  it('treats a value that expands to nothing as not given, so the default applies', async () => {
    const cfg = await load(base('  bucket: b\n  endpoint: ${S3_ENDPOINT:-}\n  prefix: ${PREFIX}\n'), { PREFIX: '' });
    expect(cfg.source.options).not.toHaveProperty('endpoint');
    expect(cfg.source.options.prefix).toBe('');
  });

  it('uses the default for a variable that is set but empty, like the shell', async () => {
    const cfg = await load(base('  bucket: ${B:-fallback}\n'), { B: '' });
    expect(cfg.source.options.bucket).toBe('fallback');
  });

  it('reports every unset variable once, with the path and line where it is used', async () => {
    const result = await validatePipelineText(
      'name: ${NAME}\nsource:\n  type: s3\n  bucket: ${A}-${B}\nsink: { type: jsonl, dir: out }\n',
      path.join(dir, 'v.yml'),
      { env: {}, resolve },
    );
    expect(result.problems.map((p) => [p.path, p.line, p.message.split(' (')[0]])).toEqual([
      ['name', 1, 'variable NAME is not set and has no default'],
      ['source.bucket', 4, 'variable A is not set and has no default'],
      ['source.bucket', 4, 'variable B is not set and has no default'],
    ]);
  });
});

describe('module specifiers', () => {
  beforeAll(async () => {
    await mkdir(path.join(dir, 'local'), { recursive: true });
    await writeFile(
      path.join(dir, 'local', 'upper.js'),
      `export const Mapper = {
  spec: { kind: 'mapper', type: 'upper', summary: 'upper-cases a field', options: {
    field: { type: 'string', description: 'field', default: 'message' },
    window: { type: 'duration', description: 'window', default: '5m' },
  } },
  create(options) { return { options }; },
};
export default Mapper;
`,
    );
    // Built-in style: `spec` and `create` side by side, no default export.
    await writeFile(
      path.join(dir, 'local', 'side-by-side.js'),
      `export const spec = { kind: 'sink', type: 'null', summary: 'drops rows', options: {} };\nexport function create() { return {}; }\n`,
    );
    // An ESM-only package installed next to the pipeline: only the "import" condition is exported.
    const pkg = path.join(dir, 'node_modules', 'pipe-source-demo');
    await mkdir(path.join(pkg, 'dist'), { recursive: true });
    await writeFile(
      path.join(pkg, 'package.json'),
      JSON.stringify({ name: 'pipe-source-demo', type: 'module', exports: { '.': { types: './x.d.ts', import: './dist/index.js' } } }),
    );
    await writeFile(
      path.join(pkg, 'dist', 'index.js'),
      `export const DemoSource = { spec: { kind: 'source', type: 'demo', summary: 'demo', options: {
  count: { type: 'integer', description: 'n', required: true, min: 1 },
} }, create() { return {}; } };\n`,
    );
  });

  it('imports a local module relative to the pipeline and validates its options with its spec', async () => {
    const cfg = await load(
      'name: x\nsource: { type: s3, bucket: b }\nmappers:\n  - ./local/upper.js#Mapper\n  - { type: ./local/upper.js, field: msg, window: 1h }\nsink: stdout\n',
    );
    expect(cfg.mappers.map((m) => [m.type, m.module.spec.type, m.options])).toEqual([
      ['./local/upper.js#Mapper', 'upper', { field: 'message', window: 300_000 }],
      ['./local/upper.js', 'upper', { field: 'msg', window: 3_600_000 }],
    ]);
    expect(await cfg.mappers[1]!.module.create(cfg.mappers[1]!.options, undefined as never)).toEqual({
      options: { field: 'msg', window: 3_600_000 },
    });
  });

  it('takes a module that exports spec and create side by side', async () => {
    const cfg = await load('name: x\nsource: { type: s3, bucket: b }\nsink: ./local/side-by-side.js\n');
    expect(cfg.sink.module.spec.type).toBe('null');
  });

  it('imports an ESM-only package installed next to the pipeline', async () => {
    const cfg = await load('name: x\nsource: { type: pipe-source-demo#DemoSource, count: 3 }\nsink: stdout\n');
    expect(cfg.source.module.spec.type).toBe('demo');
    expect(cfg.source.options).toEqual({ count: 3 });
  });

  it('reports unknown options of a module component against its own spec', async () => {
    const result = await validatePipelineText(
      'name: x\nsource: { type: pipe-source-demo#DemoSource, count: 0, size: 1 }\nsink: stdout\n',
      path.join(dir, 'm.yml'),
      { env: {}, resolve },
    );
    expect(result.problems).toEqual([
      { path: 'source.count', line: 2, message: 'expected at least 1, got 0' },
      { path: 'source.size', line: 2, message: 'unknown option for source demo; known options: count' },
    ]);
  });
});
