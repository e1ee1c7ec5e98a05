import { describe, expect, it } from 'vitest';
import { create, parseJsonLine, spec } from '../../src/loaders/jsonl.js';
import { RowError } from '../../src/types.js';
import { chunksOf, ctx, fixture, run } from './helpers.js';

const artifact = { identity: 'test', uri: 'file:///test' };
const stage = (options: Record<string, unknown> = {}) => create({ maxLineBytes: 1024 * 1024, maxDepth: 1000, ...options }, ctx).stage(artifact);
const plain = (items: unknown[]) => items.map((i) => (i instanceof RowError ? { code: i.code, message: i.message, raw: i.raw } : i));
const invalid = (raw: string) => ({ code: 'PIPE_ROW_INVALID', message: expect.stringMatching(/^invalid JSON: /), raw });

describe('jsonl loader', () => {
  const cases: Array<[string, Buffer, unknown[]]> = [
    ['json.log fixture', fixture('public/logstash-input-s3/json.log'), [{ hello: 'world' }, { hello: 'awesome world' }]],
    ['json_with_message.log fixture', fixture('public/logstash-input-s3/json_with_message.log'), [{ message: ['GET', 32, '/health'] }, { message: true }]],
    ['a line of NUL bytes is a row error in its place', fixture('bad/nul-bytes.jsonl'), [{ n: 1 }, invalid('\0\0\0\0'), { n: 2 }]],
    ['blank and whitespace-only lines are skipped, not counted', Buffer.from('{"a":1}\n\n   \r\n\t\n{"a":2}'), [{ a: 1 }, { a: 2 }]],
    ['CRLF and no final newline', Buffer.from('{"a":1}\r\n{"a":2}'), [{ a: 1 }, { a: 2 }]],
    ['any JSON value is a record', Buffer.from('1\n"s"\nnull\n[1,2]\n'), [1, 's', null, [1, 2]]],
    ['two values on one line are a row error', Buffer.from('{"a":1} {"b":2}\n{"c":3}\n'), [invalid('{"a":1} {"b":2}'), { c: 3 }]],
    ['a truncated last line is a row error', Buffer.from('{"a":1}\n{"a":'), [{ a: 1 }, invalid('{"a":')]],
    ['a BOM before the first value is dropped', Buffer.from('\ufeff{"a":1}\n'), [{ a: 1 }]],
  ];
  for (const [name, input, expected] of cases) {
    for (const size of [1, 5, 1 << 16]) {
      it(`${name} (chunks of ${size})`, async () => {
        const { items, error } = await run([stage()], chunksOf(input, size));
        expect(error).toBeUndefined();
        expect(plain(items)).toEqual(expected);
      });
    }
  }

  it('an over-long line is a PIPE_LINE_TOO_LONG row error and reading goes on', async () => {
    const input = Buffer.from(`{"a":1}\n{"long":"${'x'.repeat(100)}"}\n{"a":2}\n`);
    const { items } = await run([stage({ maxLineBytes: 50 })], [input]);
    expect(plain(items)).toEqual([{ a: 1 }, { code: 'PIPE_LINE_TOO_LONG', message: 'line of 111 bytes is longer than maxLineBytes (50)', raw: `{"long":"${'x'.repeat(100)}"}` }, { a: 2 }]);
  });

  it('a line nested deeper than maxDepth is a row error, not a stack overflow later', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const { items, error } = await run([stage()], [Buffer.from(`{"a":1}\n${deep}\n{"a":2}\n`)]);
    expect(error).toBeUndefined();
    expect(plain(items)).toEqual([{ a: 1 }, { code: 'PIPE_ROW_INVALID', message: 'JSON nested deeper than maxDepth (1000)', raw: deep.slice(0, 1024) }, { a: 2 }]);
  });

  it('maxDepth is exact: depth 3 passes a limit of 3, depth 4 does not', () => {
    expect(parseJsonLine('{"a":[{"b":1}]}', 3)).toEqual({ a: [{ b: 1 }] });
    expect(parseJsonLine('{"a":[{"b":[1]}]}', 3)).toBeInstanceOf(RowError);
    expect(parseJsonLine('{"s":"[[[[[[[[{{{{"}', 1)).toEqual({ s: '[[[[[[[[{{{{' });
    expect(parseJsonLine('{"s":"\\"[[[[\\\\"}', 1)).toEqual({ s: '"[[[[\\' });
  });

  it('raw of an invalid line is cut at 1 KiB', () => {
    const line = '{' + 'x'.repeat(5000);
    const e = parseJsonLine(line, 1000) as RowError;
    expect(e.raw).toBe(line.slice(0, 1024));
  });

  it('documents every option and produces records', () => {
    expect(Object.keys(spec.options).sort()).toEqual(['maxDepth', 'maxLineBytes']);
    for (const o of Object.values(spec.options)) {
      expect(o.default).toBeDefined();
      expect(o.example).toBeDefined();
      expect(o.description.length).toBeGreaterThan(20);
    }
    expect(create({}, ctx).output).toBe('records');
  });
});
