/**
 * The bad-input corpus through the real CLI: every file of fixtures/bad/ (see its README) and the
 * big generated ones (a 10 MB single line, JSON nested 100,000 levels deep, a 10 MB single-line
 * CloudTrail document) among good CloudTrail deliveries, good lines and good VPC flow lines. Each bad
 * input yields a recorded failure (`pipe status --json`: code, reason, position) or row errors (in
 * `pipe status` and in the sink's `_errors/` dead letters); every good row around them is delivered.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSink, ROOT, runCli } from '../helpers/cli.js';
import { cloudTrailEvent, writeCloudTrail } from '../helpers/data.js';
import { tempDir } from '../helpers/tmp.js';

const BAD = join(ROOT, 'fixtures/bad');
const MB10 = 10 * 1024 * 1024;
const VPC_HEADER = 'version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status';
const vpc = (port: number): string => `2 123456789012 eni-1 10.0.0.1 10.0.0.2 ${port} 443 6 10 840 1709251200 1709251260 ACCEPT OK`;
const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

type Pipeline = 'json' | 'lines' | 'jsonl' | 'vpc';
interface Case {
  pipeline: Pipeline;
  file: string;
  /** Copied from fixtures/bad/ when absent. */
  content?: () => Buffer | string;
  /** The artifact's failure, or none (it is done). */
  failed?: { code: string; row: number; byte?: number; reason: RegExp };
  /** Row errors: code and row position, in row order. */
  rowErrors?: Array<{ code: string; row: number }>;
  /** What each delivered row of this file says (eventID, message, srcport), in order. */
  rows: unknown[];
  /** A gzip failure whose position and reason once depended on worker-thread timing (see the last test). */
  threadsBug?: boolean;
}

const CASES: Case[] = [
  // JSON documents: loader json (path Records), rows are the records themselves.
  { pipeline: 'json', file: 'trailing-comma.json', failed: { code: 'PIPE_ARTIFACT_CORRUPT', row: 2, byte: 46, reason: /unexpected token '\]'/ }, rows: ['a1', 'a2'] },
  { pipeline: 'json', file: 'records-object.json', failed: { code: 'PIPE_ARTIFACT_CORRUPT', row: 0, byte: 11, reason: /'Records' holds an object, not an array/ }, rows: [] },
  { pipeline: 'json', file: 'record-string.json', rows: ['a1', 'just a string', 'a3'] },
  { pipeline: 'json', file: 'invalid-utf8.json', rows: ['a1'] },
  { pipeline: 'json', file: 'truncated.json', failed: { code: 'PIPE_ARTIFACT_CORRUPT', row: 2, byte: 54, reason: /JSON ends inside a value/ }, rows: ['a1', 'a2'] },
  { pipeline: 'json', file: 'concatenated.json', rows: ['a1', 'b1', 'b2'] },
  {
    pipeline: 'json', file: 'nested-100k.json',
    content: () => `{"Records":[${JSON.stringify(cloudTrailEvent(901, 0))},${nested(100_000)},${JSON.stringify(cloudTrailEvent(901, 1))}]}`,
    failed: { code: 'PIPE_ARTIFACT_CORRUPT', row: 1, reason: /nested deeper than maxDepth \(1000\)/ }, rows: ['ev-0901-00000'],
  },
  {
    // 10 MB on one line is not bad for the json loader: a document of any size streams.
    pipeline: 'json', file: 'one-line-10mb.json',
    content: () => {
      const records = [];
      for (let i = 0, size = 0; size < MB10; i++) {
        const e = cloudTrailEvent(902, i);
        size += JSON.stringify(e).length;
        records.push(e);
      }
      return JSON.stringify({ Records: records });
    },
    rows: [], // replaced by every eventID of the document (all902)
  },
  // Line files (no mapper: a row per line), gzip detected from the magic bytes.
  { pipeline: 'lines', file: 'truncated.log.gz', failed: { code: 'PIPE_ARTIFACT_TRUNCATED', row: 0, byte: 150, reason: /ends inside the compressed body/ }, rows: [] },
  { pipeline: 'lines', file: 'garbage-body.gz', failed: { code: 'PIPE_ARTIFACT_CORRUPT', row: 0, byte: 10, reason: /gzip member 1: invalid/ }, rows: [], threadsBug: true },
  { pipeline: 'lines', file: 'trailing-garbage.log.gz', failed: { code: 'PIPE_ARTIFACT_CORRUPT', row: 2, byte: 31, reason: /trailing garbage after gzip member 1/ }, rows: ['line 1', 'line 2'], threadsBug: true },
  { pipeline: 'lines', file: 'nul-bytes.jsonl', rows: ['{"n":1}', '\0\0\0\0', '{"n":2}'] },
  {
    pipeline: 'lines', file: 'line-10mb.log', content: () => `before\n${'x'.repeat(MB10)}\nafter\n`,
    rowErrors: [{ code: 'PIPE_LINE_TOO_LONG', row: 2 }], rows: ['before', 'after'],
  },
  // JSON lines: a bad line is a row error in its place.
  { pipeline: 'jsonl', file: 'nul-bytes.jsonl', rowErrors: [{ code: 'PIPE_ROW_INVALID', row: 2 }], rows: [1, 2] },
  { pipeline: 'jsonl', file: 'nested-100k.jsonl', content: () => `{"n":1}\n${nested(100_000)}\n{"n":2}\n`, rowErrors: [{ code: 'PIPE_ROW_INVALID', row: 2 }], rows: [1, 2] },
  // VPC flow logs: a line with too few fields, and a 10 MB line, among good ones.
  {
    pipeline: 'vpc', file: 'flow-bad.log',
    content: () => [VPC_HEADER, vpc(1), '2 123456789012 eni-1 10.0.0.1', vpc(2), 'y'.repeat(MB10), vpc(3)].join('\n') + '\n',
    rowErrors: [{ code: 'PIPE_ROW_INVALID', row: 3 }, { code: 'PIPE_LINE_TOO_LONG', row: 5 }], rows: [1, 2, 3],
  },
];

const PIPELINES: Record<Pipeline, string> = {
  json: 'loader: [{ type: json, path: Records }]\n',
  lines: '',
  jsonl: 'loader: [jsonl]\n',
  vpc: 'mappers: [vpcflow]\n',
};

/** What a delivered row says, to compare with Case.rows. */
const label: Record<Pipeline, (r: Record<string, unknown>) => unknown> = {
  json: (r) => r.eventID ?? r.message,
  lines: (r) => r.message,
  jsonl: (r) => r.n,
  vpc: (r) => r.srcport,
};

interface Status {
  artifacts: { done: number; failed: number; inProgress: number };
  failed: Array<{ uri: string; errorCode: string; errorMessage: string; errorPosition?: { row?: number; byte?: number } }>;
  rowErrors: Array<{ uri: string; code: string; message: string; position: { row: number } }>;
}

interface Setup { dir: string; good: Record<Pipeline, unknown[]>; all902: string[] }

function setup(): Setup {
  const dir = tempDir('pipe-bad-corpus-');
  const good = {} as Record<Pipeline, unknown[]>;
  for (const p of Object.keys(PIPELINES) as Pipeline[]) mkdirSync(join(dir, p, 'in'), { recursive: true });
  // Good data around the bad: names sort before and after the bad files.
  good.json = writeCloudTrail(join(dir, 'json/in'), 4, 50);
  good.lines = Array.from({ length: 200 }, (_, i) => `good ${i}`);
  writeFileSync(join(dir, 'lines/in/a-good.log.gz'), gzipSync(good.lines.slice(0, 100).join('\n') + '\n'));
  writeFileSync(join(dir, 'lines/in/z-good.log'), good.lines.slice(100).join('\n') + '\n');
  good.jsonl = Array.from({ length: 100 }, (_, i) => 1000 + i);
  writeFileSync(join(dir, 'jsonl/in/good.jsonl'), good.jsonl.map((n) => JSON.stringify({ n })).join('\n') + '\n');
  good.vpc = Array.from({ length: 100 }, (_, i) => 2000 + i);
  writeFileSync(join(dir, 'vpc/in/a-good.log'), [VPC_HEADER, ...good.vpc.slice(0, 50).map((p) => vpc(p as number))].join('\n') + '\n');
  writeFileSync(join(dir, 'vpc/in/z-good.log'), [VPC_HEADER, ...good.vpc.slice(50).map((p) => vpc(p as number))].join('\n') + '\n');
  let all902: string[] = [];
  for (const c of CASES) {
    const target = join(dir, c.pipeline, 'in', c.file);
    if (c.content) {
      const body = c.content();
      writeFileSync(target, body);
      if (c.file === 'one-line-10mb.json') all902 = (JSON.parse(String(body)) as { Records: Array<{ eventID: string }> }).Records.map((r) => r.eventID);
    } else copyFileSync(join(BAD, c.file), target);
  }
  for (const p of Object.keys(PIPELINES) as Pipeline[]) {
    writeFileSync(join(dir, `${p}.yml`), `name: bad-${p}\nstate: ${join(dir, `${p}.db`)}\nsource: { type: files, path: ${join(dir, p, 'in')} }\n${PIPELINES[p]}sink: { type: jsonl, dir: ${join(dir, p, 'out')} }\n`);
  }
  return { dir, good, all902 };
}

function deadLetters(out: string): Array<{ uri: string; code: string; position: { row: number } }> {
  const d = join(out, '_errors');
  let names: string[] = [];
  try {
    names = readdirSync(d).filter((n) => n.endsWith('.jsonl'));
  } catch {
    return [];
  }
  return names.flatMap((n) => readFileSync(join(d, n), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { uri: string; code: string; position: { row: number } }));
}

// Default worker threads (what users get) and everything on the main thread.
describe.each([['default threads', []], ['--threads 0', ['--threads', '0']]] as Array<[string, string[]]>)('bad-input corpus (%s)', (mode, extra) => {
  let s: Setup;
  const results = {} as Record<Pipeline, { code: number | null; stderr: string; status: Status; rows: Array<Record<string, unknown>>; dead: ReturnType<typeof deadLetters> }>;
  beforeAll(async () => {
    s = setup();
    await Promise.all((Object.keys(PIPELINES) as Pipeline[]).map(async (p) => {
      const file = join(s.dir, `${p}.yml`);
      const r = await runCli(['run', file, '--no-progress', ...extra]);
      const st = await runCli(['status', file, '--json']);
      expect(st.code, st.stderr).toBe(0);
      results[p] = { code: r.code, stderr: r.stderr, status: JSON.parse(st.stdout) as Status, rows: readSink(join(s.dir, p, 'out')), dead: deadLetters(join(s.dir, p, 'out')) };
    }));
  }, 120_000);

  it.each(CASES.map((c) => [`${c.pipeline}: ${c.file}`, c] as const))('%s', (_name, c) => {
    const res = results[c.pipeline];
    const uri = `file://${join(s.dir, c.pipeline, 'in', c.file)}`;
    const failed = res.status.failed.find((f) => f.uri === uri);
    if (c.failed) {
      expect(failed, res.stderr).toBeDefined();
      expect({ code: failed!.errorCode, row: failed!.errorPosition?.row }).toEqual({ code: c.failed.code, row: c.failed.row });
      if (c.failed.byte !== undefined) expect(failed!.errorPosition?.byte).toBe(c.failed.byte);
      else expect(failed!.errorPosition?.byte).toBeGreaterThanOrEqual(c.failed.byte ?? 1);
      expect(failed!.errorMessage).toMatch(c.failed.reason);
    } else {
      expect(failed, JSON.stringify(failed)).toBeUndefined();
    }
    const errs = res.status.rowErrors.filter((e) => e.uri === uri).map((e) => ({ code: e.code, row: e.position.row })).sort((a, b) => a.row - b.row);
    expect(errs).toEqual(c.rowErrors ?? []);
    const dead = res.dead.filter((e) => e.uri === uri).map((e) => ({ code: e.code, row: e.position.row })).sort((a, b) => a.row - b.row);
    expect(dead).toEqual(c.rowErrors ?? []);
    const rows = res.rows.filter((r) => r._source === uri);
    const want = c.file === 'one-line-10mb.json' ? s.all902 : c.rows;
    expect(rows.map(label[c.pipeline])).toEqual(want);
    if (c.file === 'invalid-utf8.json') expect(String(rows[0]!.userAgent)).toContain('\uFFFD');
  });

  it('every good row around the bad inputs is delivered, exactly once; exit 1 where artifacts failed', () => {
    for (const p of Object.keys(PIPELINES) as Pipeline[]) {
      const res = results[p];
      const bad = new Set(CASES.filter((c) => c.pipeline === p).map((c) => `file://${join(s.dir, p, 'in', c.file)}`));
      const good = res.rows.filter((r) => !bad.has(String(r._source))).map(label[p]);
      expect(p === 'json' ? good : [...good].sort(), p).toEqual(p === 'json' ? expect.arrayContaining(s.good.json) : [...s.good[p]].sort());
      expect(good.length, p).toBe(s.good[p].length);
      expect(new Set(res.rows.map((r) => r._id)).size).toBe(res.rows.length);
      const failures = CASES.filter((c) => c.pipeline === p && c.failed).length;
      expect({ exit: res.code, failed: res.status.artifacts.failed, inProgress: res.status.artifacts.inProgress }, res.stderr).toEqual({ exit: failures ? 1 : 0, failed: failures, inProgress: 0 });
    }
  });
});

// With worker threads, a stage's failure once lost to the AbortError of the stages torn down after
// it (failed at the file's size, "The operation was aborted"); the decoder's own error must win.
describe('gzip failure positions and reasons with worker threads', () => {
  it('same code, reason and byte as --threads 0, ten runs in a row', async () => {
    const bad = CASES.filter((c) => c.threadsBug);
    for (let run = 0; run < 10; run++) {
      const dir = tempDir('pipe-bad-threads-');
      mkdirSync(join(dir, 'in'));
      for (const c of bad) copyFileSync(join(BAD, c.file), join(dir, 'in', c.file));
      writeFileSync(join(dir, 'in', 'good.log'), 'ok\n');
      const file = join(dir, 'p.yml');
      writeFileSync(file, `name: p\nstate: ${join(dir, 'state.db')}\nsource: { type: files, path: ${join(dir, 'in')} }\nsink: { type: jsonl, dir: ${join(dir, 'out')} }\n`);
      expect((await runCli(['run', file, '--no-progress'])).code).toBe(1);
      const st = JSON.parse((await runCli(['status', file, '--json'])).stdout) as Status;
      for (const c of bad) {
        const f = st.failed.find((x) => x.uri.endsWith(`/${c.file}`))!;
        expect({ file: c.file, byte: f.errorPosition?.byte, reasonOk: c.failed!.reason.test(f.errorMessage) }).toEqual({ file: c.file, byte: c.failed!.byte, reasonOk: true });
      }
    }
  });
});
