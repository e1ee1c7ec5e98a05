import { describe, expect, it } from 'vitest';
import type { RawJsonDocument } from '../../src/loaders/json-raw.js';
import { scanJsonRecords } from '../../src/loaders/json-scan.js';
import { fixture } from './helpers.js';

/** A small seeded generator (mulberry32), so every failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ['eventID', 'eventTime', 'a', 'b', 'user', '1', '10', '_id', '', 'k"q', 'tab\t', 'é', '__proto__'];
const STRINGS = ['', 'plain', 'quote " and \\ back', 'nl\nx', 'ctl\u0001\u001f', 'é ß', '🚀', '\ud800 lone', '\u2028', '/slash/', 'x'.repeat(300)];
const NUMBERS = ['0', '-0', '1', '-17', '123456789012345', '1234567890123456', '12345678901234567890', '1.5', '1.50', '0.1', '1e3', '1E+2', '-2.5e-7', '0.000001', '1e21', '1e400'];

/** A JSON text made by hand: odd numbers, escapes and spacing that JSON.stringify never writes. */
function text(rnd: () => number, depth: number, space: () => string): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const r = rnd();
  if (depth > 3 || r < 0.35) {
    const s = rnd();
    if (s < 0.3) return pick(NUMBERS);
    if (s < 0.4) return pick(['true', 'false', 'null']);
    if (s < 0.5) return pick(['"\\/"', '"\\u0041"', '"\\u001b"', '"a\\tb"', '"\\ud83d\\ude80"']);
    return JSON.stringify(pick(STRINGS));
  }
  if (r < 0.55) {
    const n = Math.floor(rnd() * 4);
    return `[${space()}${Array.from({ length: n }, () => text(rnd, depth + 1, space)).join(`${space()},${space()}`)}${space()}]`;
  }
  const n = Math.floor(rnd() * (rnd() < 0.05 ? 80 : 6));
  const keys = Array.from({ length: n }, (_, i) => (n > 10 ? `k${i}` : pick(KEYS)));
  return `{${space()}${keys.map((k) => `${JSON.stringify(k)}${space()}:${space()}${text(rnd, depth + 1, space)}`).join(`${space()},${space()}`)}${space()}}`;
}

function document(seed: number): string {
  const rnd = random(seed);
  const spaced = rnd() < 0.3;
  const space = (): string => (spaced && rnd() < 0.2 ? ' \n\t'.charAt(Math.floor(rnd() * 3)) : '');
  const records = Array.from({ length: Math.floor(rnd() * 6) }, () => text(rnd, 0, space));
  const before = rnd() < 0.3 ? `"meta":${text(rnd, 1, space)},` : '';
  return `{${before}"Records":[${records.join(',')}]}`;
}

/** What a scan says must agree with JSON.parse of the whole document. */
function agrees(input: Buffer, doc: RawJsonDocument, keys: string[]): void {
  const parsed = JSON.parse(input.toString('utf8').replace(/^\ufeff/, '')) as { Records: unknown[] };
  const records = doc.records();
  expect(records.length).toBe(parsed.Records.length);
  records.forEach((r, i) => {
    expect(JSON.stringify(r.value())).toBe(JSON.stringify(parsed.Records[i]));
    if (r.canonical) expect(input.toString('utf8', r.start, r.end)).toBe(JSON.stringify(parsed.Records[i]));
    if (r.canonical) expect(input.subarray(r.start, r.end).equals(Buffer.from(JSON.stringify(parsed.Records[i])))).toBe(true);
    const value = parsed.Records[i];
    const isObject = value !== null && typeof value === 'object' && !Array.isArray(value);
    keys.forEach((k, ki) => {
      if (!r.canonical) return;
      const has = isObject && Object.hasOwn(value, k);
      expect(r.fieldStart(ki) >= 0).toBe(has);
      if (has) expect(input.toString('utf8', r.fieldStart(ki), r.fieldEnd(ki))).toBe(JSON.stringify((value as Record<string, unknown>)[k]));
    });
  });
}

const KEYS_WANTED = ['eventID', 'eventTime', '_id'];

describe('json-scan: the records of a document as their own bytes', () => {
  it('agrees with JSON.parse on 3,000 generated documents, and finds canonical records canonical', () => {
    let canonical = 0;
    let scanned = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const input = Buffer.from(document(seed));
      const doc = scanJsonRecords(input, 'Records', KEYS_WANTED, 1000);
      if (!doc) continue;
      scanned++;
      agrees(input, doc, KEYS_WANTED);
      for (const r of doc.records()) {
        const v = r.value();
        // A record JSON.stringify writes back as it was must be found canonical.
        if (JSON.stringify(v) === input.toString('utf8', r.start, r.end) && !/"\d+":|\\u|\\\//.test(JSON.stringify(v))) {
          expect(r.canonical).toBe(true);
        }
        if (r.canonical) canonical++;
      }
    }
    expect(scanned).toBeGreaterThan(2900);
    expect(canonical).toBeGreaterThan(1000);
  });

  it('never accepts what JSON.parse refuses: 20,000 mutated documents', () => {
    const rnd = random(7);
    let accepted = 0;
    let refused = 0;
    for (let k = 0; k < 20000; k++) {
      const bytes = Buffer.from(document(1 + (k % 500)));
      const at = Math.floor(rnd() * bytes.length);
      const op = rnd();
      const junk = '{}[]",:\\ 0-1eE.tfnu\x01\x7f'.charAt(Math.floor(rnd() * 22));
      let mutated: Buffer;
      if (op < 0.33) mutated = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
      else if (op < 0.66) mutated = Buffer.concat([bytes.subarray(0, at), Buffer.from(junk), bytes.subarray(at)]);
      else mutated = Buffer.concat([bytes.subarray(0, at), Buffer.from(junk), bytes.subarray(at + 1)]);
      const doc = scanJsonRecords(mutated, 'Records', KEYS_WANTED, 1000);
      let valid = true;
      try {
        const v = JSON.parse(mutated.toString('utf8')) as { Records?: unknown };
        valid = Array.isArray(v?.Records);
      } catch {
        valid = false;
      }
      if (doc) {
        expect(valid, mutated.toString('latin1')).toBe(true);
        agrees(mutated, doc, KEYS_WANTED);
        accepted++;
      } else if (!valid) {
        refused++;
      }
    }
    expect(accepted).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1000);
  });

  // The scan may call a record odd that JSON.stringify would write back the same: it is then only
  // parsed, never wrong. The reverse would be a wrong row.
  it.each([
    ['canonical', '{"Records":[{"a":1,"b":"x"}]}', true, true],
    ['whitespace between tokens', '{"Records":[{"a": 1}]}', false, false],
    ['\\/ in a string', '{"Records":[{"a":"\\/"}]}', false, false],
    ['\\u escape', '{"Records":[{"a":"\\u0041"}]}', false, false],
    ['non-ASCII', '{"Records":[{"a":"é ß 🚀 \u2028"}]}', true, true],
    ['a key twice', '{"Records":[{"a":1,"a":2}]}', false, false],
    ['a nested key twice', '{"Records":[{"a":{"x":1,"y":2,"x":3}}]}', false, false],
    ['the same key in sibling objects', '{"Records":[{"a":{"x":1},"b":{"x":1}}]}', true, true],
    ['a digits-only key', '{"Records":[{"b":1,"7":2}]}', false, false],
    ['-0', '{"Records":[-0]}', false, false],
    ['1.0', '{"Records":[1.0]}', false, false],
    ['1.5', '{"Records":[1.5]}', true, true],
    ['1e3', '{"Records":[1e3]}', false, false],
    ['a 16-digit integer', '{"Records":[1234567890123456]}', true, true],
    ['a 20-digit integer', '{"Records":[12345678901234567890]}', false, false],
  ])('%s: canonical is %s', (_name, input, canonical, same) => {
    const doc = scanJsonRecords(Buffer.from(input), 'Records', [], 1000)!;
    expect(doc.records().map((r) => r.canonical)).toEqual([canonical]);
    expect(JSON.stringify(doc.records()[0]!.value()) === input.slice(12, -2)).toBe(same);
  });

  it('an object with more keys than it checks for duplicates is not canonical', () => {
    const keys = Array.from({ length: 100 }, (_, i) => `"k${i}":${i}`).join(',');
    const doc = scanJsonRecords(Buffer.from(`{"Records":[{${keys}},{"a":1}]}`), 'Records', [], 1000)!;
    expect(doc.records().map((r) => r.canonical)).toEqual([false, true]);
  });

  it.each([
    ['no path key', '{"Other":[1]}'],
    ['the path key twice', '{"Records":[1],"Records":[2]}'],
    ['the path written with an escape', '{"Recor\\u0064s":[1]}'],
    ['the path holding an object', '{"Records":{"a":1}}'],
    ['a top-level array', '[{"Records":[1]}]'],
    ['two documents', '{"Records":[1]}{"Records":[2]}'],
    ['trailing text', '{"Records":[1]} x'],
    ['empty', ''],
    ['too deep', `{"Records":[${'['.repeat(10)}${']'.repeat(10)}]}`],
  ])('leaves %s to JSON.parse', (_name, input) => {
    expect(scanJsonRecords(Buffer.from(input), 'Records', [], 8)).toBeUndefined();
  });

  it('skips a byte-order mark and surrounding whitespace, as JSON.parse does', () => {
    const input = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(' \n{"Records":[{"a":1}] , "x" : [ 1 ]}\n')]);
    const doc = scanJsonRecords(input, 'Records', ['a'], 1000)!;
    agrees(input, doc, ['a']);
    expect(doc.records()[0]!.canonical).toBe(true);
  });

  it('invalid UTF-8 in a record: not canonical, and parsed as the whole document would be', () => {
    const input = Buffer.concat([Buffer.from('{"Records":[{"a":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"},{"b":2}]}')]);
    const doc = scanJsonRecords(input, 'Records', [], 1000)!;
    agrees(input, doc, []);
    expect(doc.records().map((r) => r.canonical)).toEqual([false, true]);
  });

  it.each([
    ['a surrogate encoded in UTF-8', [0xed, 0xa0, 0x80]],
    ['an overlong slash', [0xc0, 0xaf]],
    ['an overlong three-byte form', [0xe0, 0x80, 0xaf]],
    ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['a lone continuation byte', [0x80]],
    ['a sequence cut short', [0xe2, 0x82]],
    ['a sequence cut by the quote', [0xf0, 0x9f, 0x9a]],
  ])('%s: not canonical, parsed with U+FFFD as the whole document would be', (_name, bytes) => {
    const input = Buffer.concat([Buffer.from('{"Records":[{"a":"x'), Buffer.from(bytes), Buffer.from('y"},{"b":"€𝄞"}]}')]);
    const doc = scanJsonRecords(input, 'Records', ['a'], 1000)!;
    agrees(input, doc, ['a']);
    expect(doc.records().map((r) => r.canonical)).toEqual([false, true]);
  });

  it('the public CloudTrail samples: compact ones canonical, indented ones parsed', () => {
    for (const name of ['cloudtrail_log.json', 'cloudtrail_log_stream.json']) {
      const input = fixture(`public/opentelemetry-collector-contrib/${name}`);
      const doc = scanJsonRecords(input, 'Records', ['eventID', 'eventTime'], 1000)!;
      expect(doc).toBeDefined();
      agrees(input, doc, ['eventID', 'eventTime']);
    }
  });
});

describe('json-scan: keys', () => {
  it('keys alike in length and in the bytes the duplicate check looks at first are still told apart', () => {
    const doc = scanJsonRecords(Buffer.from('{"Records":[{"aXbYc":1,"aZbWc":2,"aXbYc":3},{"aXbYc":1,"aZbWc":2}]}'), 'Records', [], 1000)!;
    expect(doc.records().map((r) => r.canonical)).toEqual([false, true]);
  });

  it('a key over 253 characters makes its record parsed, and the result is the same', () => {
    const long = 'k'.repeat(300);
    const input = Buffer.from(`{"Records":[{"${long}":1},{"a":1}]}`);
    const doc = scanJsonRecords(input, 'Records', [], 1000)!;
    expect(doc.records().map((r) => r.canonical)).toEqual([false, true]);
    expect(doc.records()[0]!.value()).toEqual({ [long]: 1 });
  });
});
