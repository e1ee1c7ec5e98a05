/**
 * Byte-level checks of the JSON scan (json-scan.ts) that need none of its state: well-formed
 * UTF-8, and the keys of the open objects, to find a key given twice.
 */

const isTail = (c: number | undefined): boolean => c !== undefined && c >= 0x80 && c <= 0xbf;

/**
 * The length of the well-formed UTF-8 sequence at b[i] (a byte above ASCII), or 0: no overlong
 * forms, no surrogates, nothing above U+10FFFF (the Unicode standard's table 3-7).
 */
export function utf8Length(b: Buffer, i: number): number {
  const c = b[i]!;
  const c1 = b[i + 1];
  if (c >= 0xc2 && c <= 0xdf) return isTail(c1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const ok1 = c === 0xe0 ? c1 !== undefined && c1 >= 0xa0 && c1 <= 0xbf : c === 0xed ? c1 !== undefined && c1 >= 0x80 && c1 <= 0x9f : isTail(c1);
    return ok1 && isTail(b[i + 2]) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const ok1 = c === 0xf0 ? c1 !== undefined && c1 >= 0x90 && c1 <= 0xbf : c === 0xf4 ? c1 !== undefined && c1 >= 0x80 && c1 <= 0x8f : isTail(c1);
    return ok1 && isTail(b[i + 2]) && isTail(b[i + 3]) ? 4 : 0;
  }
  return 0;
}

/** Whether the `len` bytes at `a` and at `b2` are the same. */
function sameSpan(b: Buffer, a: number, b2: number, len: number): boolean {
  for (let k = 0; k < len; k++) if (b[a + k] !== b[b2 + k]) return false;
  return true;
}


/** The keys of the open objects inside a record, as byte spans, to find a key given twice. */
export class KeySpans {
  starts: Int32Array = new Int32Array(256);
  /** Per key: its length and three of its bytes, so that most keys are told apart by one comparison. */
  marks: Int32Array = new Int32Array(256);
  count = 0;

  /**
   * Notes key b[start, end) of the object whose keys begin at `from`; false if it was there
   * already, or is too long for its length to fit in its mark (the record is then parsed).
   */
  add(b: Buffer, from: number, start: number, end: number): boolean {
    const len = end - start;
    if (len > 0xff) return false;
    const mark = len | (b[start + 1]! << 8) | (b[end - 2]! << 16) | (b[start + (len >> 1)]! << 24);
    for (let k = from; k < this.count; k++) {
      if (this.marks[k] === mark && sameSpan(b, this.starts[k]!, start, len)) return false;
    }
    if (this.count === this.starts.length) {
      this.starts = grow(this.starts);
      this.marks = grow(this.marks);
    }
    this.starts[this.count] = start;
    this.marks[this.count++] = mark;
    return true;
  }
}

/** A copy of `a` twice its length. */
export function grow(a: Int32Array): Int32Array {
  const bigger = new Int32Array(a.length * 2);
  bigger.set(a);
  return bigger;
}

