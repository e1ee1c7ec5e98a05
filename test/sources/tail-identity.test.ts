/**
 * The identity checks and the line reader of the tail source, as pure functions over bytes:
 * which content a cursor still fits, which file continues which generation, where a copy that
 * stops short continues, and what the cursor holds after each slice.
 */
import { describe, expect, it } from 'vitest';
import { CHECK_BYTES, FP_BYTES, continuation, digest, samePrefix, verify, type Known, type Probe, type TailCursor } from '../../src/sources/tail-identity.js';
import { Generation, LineReader } from '../../src/sources/tail-lines.js';
import { RowError } from '../../src/types.js';

/** What a probe of `content` captures, asked for `offsets`. */
function probe(content: string | Buffer, offsets: number[] = [], complete = true): Probe {
  const b = Buffer.from(content);
  const before = new Map<number, Buffer>();
  for (const o of [...offsets, b.length]) if (o <= b.length) before.set(o, b.subarray(Math.max(0, o - CHECK_BYTES), o));
  return { size: b.length, complete, head: b.subarray(0, FP_BYTES), before };
}

/** A cursor saved after reading `content` up to `offset`, the way the line reader leaves it. */
function cursor(content: string, offset = Buffer.byteLength(content)): TailCursor {
  const b = Buffer.from(content);
  const head = b.subarray(0, Math.min(b.length, FP_BYTES));
  const before = b.subarray(Math.max(0, offset - CHECK_BYTES), offset);
  return {
    v: 1, id: 'g', uri: 'file:///x', path: '/x', dev: '1', ino: '2', gzip: false, offset, line: 0,
    fp: digest(head), fpLen: head.length, check: digest(before), checkLen: before.length, done: false,
  };
}

const lines = (prefix: string, n: number, from = 0): string => Array.from({ length: n }, (_, i) => `${prefix} ${from + i}\n`).join('');

describe('verify: does a file still hold what the cursor was saved on?', () => {
  const old = lines('old', 600);
  const cur = cursor(old);
  it.each([
    ['the same file, grown', old + lines('old', 5, 600), 'same'],
    ['truncated', old.slice(0, 100), 'truncated'],
    ['truncated and regrown past the offset (copytruncate while stopped)', lines('new', 800), 'replaced'],
    ['same first bytes, other bytes before the offset', old.slice(0, 2000) + 'X'.repeat(old.length - 2000) + '\n', 'replaced'],
    ['another file on a reused inode', lines('b', 1500), 'replaced'],
  ])('%s', (_name, content, verdict) => {
    expect(verify(cur, probe(content, [cur.offset]))).toBe(verdict);
  });

  it('tiny files: the fingerprint is as long as the file was', () => {
    const tiny = cursor('a\n');
    expect(tiny.fpLen).toBe(2);
    expect(verify(tiny, probe('a\nb\n', [2]))).toBe('same');
    expect(verify(tiny, probe('b\nb\n', [2]))).toBe('replaced');
  });
});

describe('continuation: does another file hold a generation\'s content?', () => {
  const content = lines('a', 300);
  const known = (c: TailCursor, head?: Buffer, checkpoints: Known['checkpoints'] = []): Known => ({ cursor: c, checkpoints, ...(head ? { head } : {}) });

  it('a copy that goes past the offset continues at the offset', () => {
    const c = cursor(content);
    expect(continuation(known(c), probe(content + lines('a', 10, 300), [c.offset]))).toBe(c.offset);
  });

  it('a copy whose bytes before the offset differ is not a continuation', () => {
    const c = cursor(content);
    expect(continuation(known(c), probe(content.slice(0, -3) + 'zz\n', [c.offset]))).toBeUndefined();
  });

  it('a copy that stops short: continued at its end when a checkpoint in it matches, else not', () => {
    const c = cursor(content);
    const short = content.slice(0, content.indexOf('a 250\n'));
    const point = { offset: Buffer.byteLength(short), check: digest(Buffer.from(short).subarray(-CHECK_BYTES)) };
    expect(continuation(known(c, undefined, [point]), probe(short, [point.offset]))).toBe(point.offset);
    const forged = short.slice(0, -10) + 'X'.repeat(9) + '\n';
    expect(continuation(known(c, undefined, [point]), probe(forged, [point.offset]))).toBeUndefined();
    // After a restart there are no checkpoints: a full fingerprint is enough.
    expect(continuation(known(c), probe(short))).toBe(point.offset);
  });

  it('a small copy of a small file is recognised from the first bytes kept in memory', () => {
    const small = lines('s', 20);
    const c = cursor(small);
    const head = Buffer.from(small);
    expect(continuation(known(c, head), probe(small.slice(0, 40)))).toBe(40);
    expect(continuation(known(c), probe(small.slice(0, 40)))).toBeUndefined();
    expect(continuation(known(c, head), probe('s 0\ns 9\n'))).toBeUndefined();
  });

  it('an incomplete gzip stream is not judged yet; an empty file is no copy', () => {
    const c = cursor(content);
    expect(continuation(known(c), probe(content, [c.offset], false))).toBeUndefined();
    expect(samePrefix(known(c, Buffer.from(content.slice(0, FP_BYTES))), probe(content.slice(0, 10), [], false))).toBe('prefix');
    expect(continuation(known(c, Buffer.from(content)), probe(''))).toBeUndefined();
  });

  it.each([
    ['the same first bytes', content.slice(0, 50), 'prefix'],
    ['other first bytes', 'b' + content.slice(1, 50), 'no'],
    ['the whole fingerprint', content, 'yes'],
  ])('samePrefix with %s', (_name, text, expected) => {
    expect(samePrefix(known(cursor(content), Buffer.from(content.slice(0, FP_BYTES))), probe(text))).toBe(expected);
  });
});

describe('LineReader: slices and the cursor they leave', () => {
  const opts = { maxLineBytes: 16, maxLineAction: 'truncate' as const, encoding: 'utf8' as const };

  function reader(): LineReader {
    const gen = new Generation({ ...cursor(''), fp: digest(Buffer.alloc(0)), fpLen: 0 }, Buffer.alloc(0));
    return new LineReader(gen, opts, Buffer.alloc(0));
  }

  it('keeps the cursor on the last complete line, the partial one held until flushed', () => {
    const r = reader();
    expect(r.push(Buffer.from('one\ntw'))).toEqual({ records: ['one'], rowErrors: [], firstSeq: 0, bytes: 4 });
    expect(r.gen.cursor).toMatchObject({ offset: 4, line: 1, check: digest(Buffer.from('one\n')), checkLen: 4, fpLen: 6 });
    expect(r.held).toBe(2);
    expect(r.push(Buffer.from('o\nthr'))).toMatchObject({ records: ['two'], firstSeq: 1 });
    expect(r.gen.cursor.offset).toBe(8);
    expect(r.flush()).toMatchObject({ records: ['thr'], firstSeq: 2, bytes: 3 });
    expect(r.gen.cursor).toMatchObject({ offset: 11, line: 3, check: digest(Buffer.from('one\ntwo\nthr')) });
    expect(r.gen.checkpoints.map((c) => c.offset)).toEqual([4, 8, 11]);
    // After a flush the rest of that line comes as a line of its own.
    expect(r.push(Buffer.from('ee\n'))).toMatchObject({ records: ['ee'], firstSeq: 3 });
  });

  it('rewind forgets what was read past the cursor', () => {
    const r = reader();
    r.push(Buffer.from('a\nbb'));
    r.rewind();
    expect(r.readPos).toBe(2);
    expect(r.push(Buffer.from('bb\n'))).toMatchObject({ records: ['bb'], firstSeq: 1 });
  });

  it('over-long lines: truncated with a row error, or skipped as one, numbering unchanged', () => {
    const r = reader();
    const s = r.push(Buffer.from(`ok\n${'x'.repeat(40)}\nfine\n`))!;
    expect(s.records).toEqual(['ok', 'x'.repeat(16), 'fine']);
    expect(s.rowErrors).toHaveLength(1);
    expect(s.rowErrors[0]!.index).toBe(1);
    expect(s.rowErrors[0]!.error).toBeInstanceOf(RowError);
    expect(s.rowErrors[0]!.error.message).toBe('line of 40 bytes is longer than maxLineBytes (16); kept truncated');
    const skip = new LineReader(new Generation(cursor(''), Buffer.alloc(0)), { ...opts, maxLineAction: 'skip' }, Buffer.alloc(0));
    const t = skip.push(Buffer.from(`ok\n${'x'.repeat(40)}\nfine\n`))!;
    expect(t.records[1]).toBeInstanceOf(RowError);
    expect(t.records.length).toBe(3);
  });
});
