/**
 * Hostile YAML: custom tags, alias bombs, nesting past the parser's stack, names that would be
 * directories outside the sink, and secrets that must not be quoted back in problems. Each is a
 * problem with its YAML path and line, found quickly and without building the expansion.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { validatePipelineText } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problems.js';
import { makeResolver } from '../../src/config/resolve.js';
import { ALIAS_BUDGET } from '../../src/config/tree.js';
import { builtins } from '../../src/registry.js';
import { resolve } from './fixtures.js';

const FILE = path.join('/nonexistent', 'p.yml');
const SOURCE = 'source:\n  type: s3\n  bucket: b\n';
const SINK = 'sink:\n  type: jsonl\n  dir: ./out\n';

async function problemsOf(yaml: string, env: Record<string, string> = {}) {
  return (await validatePipelineText(yaml, FILE, { env, resolve })).problems;
}

/** The classic "billion laughs": `levels` levels of `width` aliases each to the level below. */
function laughs(levels: number, width: number, style: 'flow' | 'block' | 'map' = 'flow'): string {
  const lines = ['name: x', `l0: &l0 ${JSON.stringify(Array(width).fill('lol'))}`];
  for (let i = 1; i <= levels; i++) {
    const refs = Array.from({ length: width }, () => `*l${i - 1}`);
    if (style === 'flow') lines.push(`l${i}: &l${i} [${refs.join(', ')}]`);
    else if (style === 'map') lines.push(`l${i}: &l${i} { ${refs.map((r, j) => `k${j}: ${r}`).join(', ')} }`);
    else lines.push(`l${i}: &l${i}`, ...refs.map((r) => `  - ${r}`));
  }
  return `${lines.join('\n')}\n${SOURCE}${SINK}`;
}

describe('YAML tags', () => {
  it.each([
    ['!!js/function', 'bucket: !!js/function "function () { return process.exit(9) }"', 'source.bucket', 4],
    ['!!js/undefined', 'bucket: !!js/undefined ""', 'source.bucket', 4],
    ['!!js/regexp', 'bucket: !!js/regexp /x/', 'source.bucket', 4],
    ['!foo', 'bucket: !foo b', 'source.bucket', 4],
    ['!!binary', 'bucket: !!binary aGVsbG8=', 'source.bucket', 4],
    ['!!timestamp', 'bucket: !!timestamp 2001-12-14', 'source.bucket', 4],
    ['!!set', 'include: !!set { a, b }', 'source.include', 4],
    ['!!omap', 'include: !!omap [ a: 1 ]', 'source.include', 4],
    ['!<tag:example.com,2000:x>', 'bucket: !<tag:example.com,2000:x> b', 'source.bucket', 4],
    ['!!python/object', 'bucket: !!python/object:os.system [ls]', 'source.bucket', 4],
  ])('%s is refused with its path and line', async (tag, line, at, lineNo) => {
    const problems = await problemsOf(`name: x\nsource:\n  type: s3\n${' '.repeat(2)}${line}\n${SINK}`);
    expect(problems).toContainEqual({ path: at, line: lineNo, message: expect.stringContaining(`YAML tag ${tag.replace(/:os\.system$/, '')}`) });
  });

  it('a tag on a mapping, a list item or a key is refused too', async () => {
    const problems = await problemsOf(`name: x\nsource: !thing\n  type: s3\n  bucket: b\nmappers:\n  - !foo cloudtrail\n${SINK}  !k gzip: true\n`);
    expect(problems.map((p) => [p.path, p.line])).toEqual([['source', 2], ['mappers[0]', 6], ['sink', 10]]);
    expect(problems.map((p) => /YAML tag (!\w+) is not allowed/.exec(p.message)?.[1])).toEqual(['!thing', '!foo', '!k']);
  });

  it('a %TAG directive cannot smuggle one in', async () => {
    const problems = await problemsOf(`%TAG !e! tag:example.com,2000:\n---\nname: x\n${SOURCE.replace('bucket: b', 'bucket: !e!evil b')}${SINK}`);
    expect(problems).toEqual([{ path: 'source.bucket', line: 6, message: expect.stringContaining('YAML tag !<tag:example.com,2000:evil> is not allowed') }]);
  });

  it("YAML's own tags for plain values are fine", async () => {
    const v = await validatePipelineText(`name: !!str x\nsource:\n  type: s3\n  bucket: !!str 0123\n  concurrency: !!int "4"\n  forcePathStyle: !!bool true\n  region: !!null\n${SINK}`, FILE, { env: {}, resolve });
    expect(v.problems).toEqual([]);
    expect(v.config?.source.options).toMatchObject({ bucket: '0123', concurrency: 4, forcePathStyle: true });
  });
});

describe('alias bombs', () => {
  it.each(['flow', 'block', 'map'] as const)('a billion laughs (%s) is refused in well under a second', async (style) => {
    const started = Date.now();
    const problems = await problemsOf(laughs(9, 10, style));
    expect(Date.now() - started).toBeLessThan(1000);
    // Only the bomb: what it cut short would be noise.
    expect(problems).toHaveLength(1);
    const bomb = problems;
    expect(bomb[0]!.message).toMatch(new RegExp(`more than ${ALIAS_BUDGET} values by here \\(\\*l\\d; an alias bomb\\?\\)`));
    expect(bomb[0]!.line).toBeGreaterThan(2);
  });

  it('holds memory down: 10^30 values are never built', async () => {
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    await problemsOf(laughs(30, 10));
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('a bomb in an option is refused there, and nothing else about that option is said', async () => {
    // The anchors' own expansions (1,220 values) fit the budget; ten more *c in one option do not.
    const yaml = `name: x\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nsource:\n  type: s3\n  bucket: b\n  include: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n${SINK}`;
    const problems = await problemsOf(yaml);
    expect(problems).toEqual([
      { path: expect.stringMatching(/^source\.include\[\d\]$/), line: 8, message: expect.stringContaining('(*c; an alias bomb?)') },
    ]);
  });

  it('ordinary anchors and aliases still work, even many of them', async () => {
    const globs = Array.from({ length: 200 }, (_, i) => `"g${i}/**"`).join(', ');
    const yaml = `name: x\nsource:\n  type: s3\n  bucket: &b b\n  prefix: *b\n  include: &g [${globs}]\n  exclude: *g\n${SINK}`;
    const v = await validatePipelineText(yaml, FILE, { env: {}, resolve });
    expect(v.problems).toEqual([]);
    expect(v.config?.source.options.exclude).toHaveLength(200);
    expect(v.config?.source.options.prefix).toBe('b');
  });
});

describe('deep nesting', () => {
  it('past the parser stack is a syntax problem, not a crash', async () => {
    const problems = await problemsOf(`name: x\nx: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`);
    expect(problems).toEqual([{ path: '', line: 2, message: 'YAML syntax: the document is nested too deeply' }]);
  });
});

describe('pipeline names that would be directories elsewhere', () => {
  it.each([
    ['..', "a name other than '.' and '..'"],
    ['.', "a name other than '.' and '..'"],
    ['"../../etc"', "letters, digits, '.', '_' or '-'"],
    ['a/b', "letters, digits, '.', '_' or '-'"],
    ['"a\\0b"', "letters, digits, '.', '_' or '-'"],
    ['x'.repeat(129), 'at most 128 characters'],
  ])('name: %s', async (name, expected) => {
    const problems = await problemsOf(`name: ${name}\n${SOURCE}${SINK}`);
    expect(problems).toEqual([{ path: 'name', line: 1, message: expect.stringContaining(`expected ${expected}`) }]);
  });

  it('allows dots inside a name, and names up to 128 characters', async () => {
    for (const name of ['cloudtrail.prod', '...', '.hidden', 'x'.repeat(128)]) {
      expect(await problemsOf(`name: "${name}"\n${SOURCE}${SINK}`)).toEqual([]);
    }
  });
});

describe('secrets in problems', () => {
  it('a secret-named variable is quoted as written, never by its value', async () => {
    const problems = await problemsOf(`name: x\n${SOURCE}  concurrency: \${API_TOKEN}\n  ratio: \${DB_PASSWORD}\n${SINK}`, { API_TOKEN: 'tok-3xAmpl3-s3cr3t', DB_PASSWORD: '12345678' });
    expect(problems).toEqual([
      { path: 'source.concurrency', line: 5, message: "expected an integer, got '${API_TOKEN}'" },
      { path: 'source.ratio', line: 6, message: "expected at most 1, got '${DB_PASSWORD}'" },
    ]);
  });

  it('an ordinary variable is still quoted by its value, which is what the user needs to see', async () => {
    const problems = await problemsOf(`name: x\n${SOURCE}  concurrency: \${C}\n${SINK}`, { C: 'lots' });
    expect(problems).toEqual([{ path: 'source.concurrency', line: 5, message: "expected an integer, got 'lots'" }]);
  });

  it("a component check's message does not echo a secret variable either", async () => {
    const real = makeResolver(builtins);
    const yaml = `name: x\nsource:\n  type: s3\n  bucket: b\n  endpoint: \${S3_SECRET_URL}\nsink:\n  type: jsonl\n  dir: ./out\n`;
    const v = await validatePipelineText(yaml, FILE, { env: { S3_SECRET_URL: 'ftp://k:v3ry-s3cr3t@host' }, resolve: real });
    expect(v.problems).toEqual([{ path: 'source.endpoint', line: 5, message: "expected a URL such as http://127.0.0.1:9000, got '${S3_SECRET_URL}'" }]);
  });

  it('a password written in a URL is hidden when the problem is printed', async () => {
    const real = makeResolver(builtins);
    const yaml = `name: x\nsource:\n  type: s3\n  bucket: b\n  endpoint: ftp://k:v3ry-s3cr3t@host\n${SINK}`;
    const v = await validatePipelineText(yaml, FILE, { env: {}, resolve: real });
    expect(v.problems).toHaveLength(1);
    const printed = formatProblem(FILE, v.problems[0]!);
    expect(printed).toBe(`${FILE}:5: source.endpoint: expected a URL such as http://127.0.0.1:9000, got 'ftp://k:***@host'`);
  });
});
