/**
 * The scan behind records handed on as their own bytes (json-raw.ts): the json loader's fastest
 * path, for a mapper whose row is the record as delivered plus a few fields (cloudtrail).
 *
 * JSON.parse of the document and JSON.stringify of every record were four fifths of a CloudTrail
 * run, yet the row's JSON is mostly the record's own text. One pass over the bytes validates the
 * whole document (anything it does not accept goes to JSON.parse as before) and notes, for each
 * element of the array at the path, where it starts and ends and whether its bytes are already
 * exactly what JSON.stringify(JSON.parse(them)) writes ("canonical"): no whitespace between
 * tokens, well-formed UTF-8, only the escapes JSON.stringify writes (`\"` `\\` `\b` `\f` `\n` `\r` `\t`),
 * numbers as JavaScript prints them, no key twice in an object and no key made of digits only
 * (V8 orders such keys first). For records that are objects it also notes where the values of a
 * few top-level keys are, so the mapper can read `eventTime` without parsing. A record that is
 * not canonical is parsed on its own (RawJsonRecord.value) and mapped as usual; the output is the
 * same byte for byte either way (test/loaders/json-scan.test.ts, test/mappers/cloudtrail-raw.test.ts).
 */
import { KeySpans, utf8Length } from './json-bytes.js';
import { RawJsonDocument } from './json-raw.js';

// The bytes are constants of this module, not imported (json-depth.ts has its own few): V8 reads
// an imported binding from its module at every use, and the scan ran 30 % slower so, measured.
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const D0 = 0x30;
const D1 = 0x31;
const D9 = 0x39;

/**
 * Scratch space every scan reuses: a scan runs to its end without yielding, so one at a time per
 * thread. Sized for the deepest nesting asked for so far.
 */
let scratch = { kinds: new Uint8Array(0), firstKey: new Int32Array(0) };
const keySpans = new KeySpans();

/** An object with more keys than this is not checked for duplicate keys: its record is parsed. */
const MAX_CHECKED_KEYS = 64;

// The scan's state shared with its helpers. Module-level rather than an object: these run per byte.
/** Set when the current record's bytes are not canonical (whitespace anywhere sets it: a record's start resets it). */
let odd = false;
/** Set when a string had an escape. */
let escaped = false;

/**
 * The scan's whitespace loops (`while (isWhitespace(c)) { odd = true; … }`) are written out where
 * they stand: a helper returning the index cost 5–7 % of the scan, measured, since it also
 * reloads the byte the loop already holds.
 */
function isWhitespace(c: number | undefined): boolean {
  // One comparison for the usual case, a token's first byte (all above the space).
  return c !== undefined && c <= 0x20 && (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09);
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= D0 && c <= D9) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));
}

/**
 * A string from the byte after its opening quote: the index after its closing quote, or -1 when
 * it is not valid JSON. Marks the record odd for escapes JSON.stringify would not write (`\/`,
 * `\u`) and for bytes that are not well-formed UTF-8.
 */
function scanString(b: Buffer, i: number): number {
  for (;;) {
    let c = b[i];
    while (c !== undefined && c >= 0x20 && c < 0x80 && c !== QUOTE && c !== BACKSLASH) c = b[++i];
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) {
      escaped = true;
      c = b[i + 1];
      if (c === QUOTE || c === BACKSLASH || c === 0x62 || c === 0x66 || c === 0x6e || c === 0x72 || c === 0x74) {
        i += 2;
      } else if (c === 0x2f) {
        odd = true;
        i += 2;
      } else if (c === 0x75) {
        if (!isHex(b[i + 2]) || !isHex(b[i + 3]) || !isHex(b[i + 4]) || !isHex(b[i + 5])) return -1;
        odd = true;
        i += 6;
      } else {
        return -1;
      }
      continue;
    }
    if (c === undefined || c < 0x20) return -1;
    // Above ASCII: well-formed UTF-8 is written back as it is; anything else becomes U+FFFD.
    const n = utf8Length(b, i);
    if (n === 0) {
      odd = true;
      i++;
    } else {
      i += n;
    }
  }
}

/** A number's end, or -1. Marks the record odd unless JavaScript prints the number as written. */
function scanNumber(b: Buffer, i: number): number {
  const start = i;
  let c = b[i];
  if (c === MINUS) c = b[++i];
  if (c === D0) {
    c = b[++i];
  } else if (c !== undefined && c >= D1 && c <= D9) {
    do c = b[++i]; while (c !== undefined && c >= D0 && c <= D9);
  } else {
    return -1;
  }
  let plain = true;
  if (c === 0x2e) {
    plain = false;
    c = b[++i];
    if (c === undefined || c < D0 || c > D9) return -1;
    do c = b[++i]; while (c !== undefined && c >= D0 && c <= D9);
  }
  if (c === 0x65 || c === 0x45) {
    plain = false;
    c = b[++i];
    if (c === 0x2b || c === MINUS) c = b[++i];
    if (c === undefined || c < D0 || c > D9) return -1;
    do c = b[++i]; while (c !== undefined && c >= D0 && c <= D9);
  }
  // Short integers print as written, except -0; anything else is checked by printing it.
  if (!plain || i - start > 15 || (b[start] === MINUS && b[start + 1] === D0)) {
    const text = b.toString('latin1', start, i);
    if (String(Number(text)) !== text) odd = true;
  }
  return i;
}

/** Whether b[start, end) holds the bytes of `key`. */
function sameBytes(b: Buffer, start: number, end: number, key: Uint8Array): boolean {
  if (end - start !== key.length) return false;
  for (let k = 0; k < key.length; k++) if (b[start + k] !== key[k]) return false;
  return true;
}

/** Whether b[start, end) holds digits only (V8 puts such keys first: JSON.stringify reorders them). */
function digitsOnly(b: Buffer, start: number, end: number): boolean {
  for (let k = start; k < end; k++) if (b[k]! < D0 || b[k]! > D9) return false;
  return end > start;
}

/**
 * Scans a document whose records are the elements of the array under top-level key `path`.
 * Returns undefined whenever JSON.parse must decide instead: invalid JSON, no such array (or the
 * key twice, or written with escapes), nesting deeper than `maxDepth`, more than one document.
 * `keys`: top-level keys of object records whose value spans are noted.
 */
export function scanJsonRecords(bytes: Buffer, path: string, keys: readonly string[], maxDepth: number): RawJsonDocument | undefined {
  const b = bytes;
  const n = b.length;
  const pathKey = Buffer.from(path);
  const wanted = keys.map((k) => Buffer.from(k));
  // Room for a record per 512 bytes to begin with (it grows): 10,000 small documents must not
  // each allocate room for hundreds.
  const doc = new RawJsonDocument(bytes, keys.length, Math.min(256, Math.max(8, n >> 9)));
  if (scratch.kinds.length < maxDepth + 1) scratch = { kinds: new Uint8Array(maxDepth + 1), firstKey: new Int32Array(maxDepth + 2) };
  /** Per open container (index = depth - 1): 1 object, 2 array. */
  const kinds = scratch.kinds;
  /** Per open object inside a record (index = depth): where its keys begin in `seen`. */
  const firstKey = scratch.firstKey;
  const seen = keySpans;
  seen.count = 0;
  let depth = 0;
  let i = b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
  let found = false;
  /** The value being read is the path's array. */
  let atPath = false;
  /** The path's array is open (it is the container at depth 2). */
  let inRecords = false;
  /** The first slot of the record being read, or -1. */
  let record = -1;
  /** The wanted key whose value is being read (at a record's top level), or -1. */
  let field = -1;
  /** A key comes next (after `{` or a comma in an object). */
  let needKey = false;
  let c: number | undefined;

  for (;;) {
    if (needKey) {
      needKey = false;
      c = b[i];
      while (isWhitespace(c)) {
        odd = true;
        c = b[++i];
      }
      if (c !== QUOTE) return undefined;
      const start = i;
      escaped = false;
      i = scanString(b, i + 1);
      if (i < 0) return undefined;
      if (depth === 1) {
        if (escaped) return undefined;
        if (sameBytes(b, start + 1, i - 1, pathKey)) {
          if (found) return undefined;
          found = atPath = true;
        }
      } else if (record >= 0) {
        if (b[start + 1]! >= D0 && b[start + 1]! <= D9 && digitsOnly(b, start + 1, i - 1)) odd = true;
        if (seen.count - firstKey[depth]! >= MAX_CHECKED_KEYS || !seen.add(b, firstKey[depth]!, start, i)) odd = true;
        if (depth === 3) {
          for (let k = 0; k < wanted.length; k++) {
            if (sameBytes(b, start + 1, i - 1, wanted[k]!)) {
              field = k;
              break;
            }
          }
        }
      }
      c = b[i];
      while (isWhitespace(c)) {
        odd = true;
        c = b[++i];
      }
      if (c !== COLON) return undefined;
      i++;
    }

    // A value starts here.
    c = b[i];
    while (isWhitespace(c)) {
      odd = true;
      c = b[++i];
    }
    if (inRecords && depth === 2) {
      record = doc.push();
      doc.spans[record] = i;
      odd = false;
    } else if (field >= 0 && depth === 3) {
      doc.spans[record + 3 + 2 * field] = i;
    }
    if (atPath) {
      if (c !== OPEN_BRACKET) return undefined;
      atPath = false;
      inRecords = true;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (depth === maxDepth) return undefined;
      const kind = c === OPEN_BRACE ? 1 : 2;
      kinds[depth++] = kind;
      firstKey[depth] = seen.count;
      c = b[++i];
      while (isWhitespace(c)) {
        odd = true;
        c = b[++i];
      }
      // Not empty: its first key or value next. Empty: the loop below closes it like any other.
      if (c !== (kind === 1 ? CLOSE_BRACE : CLOSE_BRACKET)) {
        needKey = kind === 1;
        continue;
      }
    } else if (c === QUOTE) {
      i = scanString(b, i + 1);
      if (i < 0) return undefined;
    } else if (c === 0x74) {
      if (b[i + 1] !== 0x72 || b[i + 2] !== 0x75 || b[i + 3] !== 0x65) return undefined;
      i += 4;
    } else if (c === 0x66) {
      if (b[i + 1] !== 0x61 || b[i + 2] !== 0x6c || b[i + 3] !== 0x73 || b[i + 4] !== 0x65) return undefined;
      i += 5;
    } else if (c === 0x6e) {
      if (b[i + 1] !== 0x75 || b[i + 2] !== 0x6c || b[i + 3] !== 0x6c) return undefined;
      i += 4;
    } else {
      i = scanNumber(b, i);
      if (i < 0) return undefined;
    }

    // A value ended at i (or an empty container is open): note it, then close containers until a
    // comma or the end.
    for (;;) {
      if (field >= 0 && depth === 3) {
        doc.spans[record + 4 + 2 * field] = i;
        field = -1;
      }
      if (record >= 0 && depth === 2) {
        doc.spans[record + 1] = i;
        doc.spans[record + 2] = odd ? 0 : 1;
        record = -1;
      }
      c = b[i];
      while (isWhitespace(c)) {
        odd = true;
        c = b[++i];
      }
      if (depth === 0) {
        // One document only, and the path must have been there.
        return i === n && found ? doc : undefined;
      }
      const kind = kinds[depth - 1];
      if (c === COMMA) {
        i++;
        needKey = kind === 1;
        break;
      }
      if (c !== (kind === 1 ? CLOSE_BRACE : CLOSE_BRACKET)) return undefined;
      seen.count = firstKey[depth]!;
      i++;
      depth--;
      if (inRecords && depth === 1) inRecords = false;
    }
  }
}
