import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isComponentModule, isModuleSpecifier, makeResolver } from '../../src/config/resolve.js';
import { validateComponentOptions } from '../../src/config/options.js';
import { builtins, jsonLoader, jsonlSink, s3Source } from './fixtures.js';

let dir: string;
const resolve = makeResolver(builtins);
const component = (type: string) =>
  `export const C = { spec: { kind: 'loader', type: '${type}', summary: 's', options: {} }, create() { return {}; } };\n`;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pipe-config-resolve-'));
  await writeFile(path.join(dir, 'abs.js'), component('abs'));
  // A CommonJS package with a subpath, under a scope.
  const pkg = path.join(dir, 'node_modules', '@acme', 'pipe');
  await mkdir(path.join(pkg, 'lib'), { recursive: true });
  await writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name: '@acme/pipe', main: 'lib/index.cjs' }));
  await writeFile(path.join(pkg, 'lib', 'index.cjs'), `exports.C = { spec: { kind: 'loader', type: 'cjs', summary: 's', options: {} }, create() {} };\n`);
  await writeFile(path.join(pkg, 'lib', 'extra.mjs'), component('sub'));
  // An ESM-only package whose export map has no entry for the subpath asked for.
  const esm = path.join(dir, 'node_modules', 'esm-only');
  await mkdir(esm, { recursive: true });
  await writeFile(path.join(esm, 'package.json'), JSON.stringify({ name: 'esm-only', exports: { '.': { import: './index.js' } } }));
  await writeFile(path.join(esm, 'index.js'), component('esm'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('makeResolver', () => {
  it('finds built-ins by kind and name', async () => {
    expect(await resolve('sink', 'jsonl', dir)).toBe(jsonlSink);
    expect(await resolve('source', 's3', dir)).toBe(s3Source);
    expect(await resolve('loader', 'json', dir)).toBe(jsonLoader);
  });

  it('does not treat inherited object keys as built-ins', async () => {
    expect(await resolve('sink', 'toString', dir)).toEqual({
      reason: "unknown sink type 'toString'; known sink types: jsonl, stdout, or a module specifier such as ./my-sink.js#Export or my-package#Export",
    });
  });

  it.each([
    ['an absolute path', () => `${path.join(dir, 'abs.js')}#C`, 'abs'],
    ['a file: URL', () => `${pathToFileURL(path.join(dir, 'abs.js')).href}#C`, 'abs'],
    ['a scoped CommonJS package', () => '@acme/pipe#C', 'cjs'],
    ['a package subpath', () => '@acme/pipe/lib/extra.mjs#C', 'sub'],
    ['an ESM-only package', () => 'esm-only#C', 'esm'],
  ])('imports %s', async (_, type, specType) => {
    const found = await resolve('loader', type(), dir);
    expect(isComponentModule(found) && found.spec.type).toBe(specType);
  });

  it('explains a package subpath that is not exported for import', async () => {
    expect(await resolve('loader', 'esm-only/internal.js#C', dir)).toEqual({
      reason: `cannot find module 'esm-only/internal.js' from ${dir}: package 'esm-only' does not export './internal.js' for import`,
    });
  });

  it('explains a module without a default export', async () => {
    expect(await resolve('loader', './abs.js', dir)).toEqual({ reason: "module './abs.js' has no export 'default'; it exports: C" });
  });
});

describe('isModuleSpecifier', () => {
  it.each([
    ['cloudtrail', false],
    ['my-pkg', false],
    ['my-pkg#Source', true],
    ['@scope/pkg#X', true],
    ['./local/mapper.js', true],
    ['../m.js#M', true],
  ])('%s → %s', (type, expected) => {
    expect(isModuleSpecifier(type)).toBe(expected);
  });
});

describe('validateComponentOptions', () => {
  it('validates plain values from code the same way, naming the path', () => {
    expect(validateComponentOptions(jsonlSink.spec, { type: 'jsonl', dir: 'out', maxBytes: '1KiB' }, 'tail sink')).toEqual({
      options: { dir: 'out', maxBytes: 1024, maxRows: 100000, flushInterval: 1000, gzip: false, partition: 'none' },
      problems: [],
    });
    expect(validateComponentOptions(jsonlSink.spec, { partition: 'week' }, 'sink').problems).toEqual([
      { path: 'sink.partition', line: 0, message: "expected one of none, day, hour, got 'week'" },
      { path: 'sink.dir', line: 0, message: 'required: a string' },
    ]);
  });
});

describe('a component spec with a bad default', () => {
  it('is reported as a bug in the component, at the option path', () => {
    const spec = { kind: 'sink' as const, type: 'broken', summary: 's', options: { every: { type: 'duration' as const, description: 'd', default: 'often' } } };
    expect(validateComponentOptions(spec, {}, 'sink').problems).toEqual([
      { path: 'sink.every', line: 0, message: "the broken component's default is not a duration such as 30s (a bug in the component)" },
    ]);
  });
});
