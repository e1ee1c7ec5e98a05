/**
 * A nesting limit for JSON. V8's JSON.parse is iterative and happily returns a value nested
 * 100,000 levels deep, but JSON.stringify and every recursive mapper then overflow the stack
 * (about 4,000 levels on Node 20's default stack). The loaders refuse such values up front, far
 * below that, so a hostile or broken artifact fails alone instead of taking the run down.
 */
export const DEFAULT_MAX_DEPTH = 1000;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;

/**
 * Whether a parsed JSON value nests objects/arrays deeper than `max` (the value itself is at depth
 * 1). Walking the parsed graph costs about a quarter of scanning its text (exceedsDepth), because
 * only objects and arrays are visited and strings are never read; it stops at the first branch
 * that goes too deep, so its own recursion is bounded by `max`.
 */
export function valueExceedsDepth(value: unknown, max: number): boolean {
  return typeof value === 'object' && value !== null && deeper(value, max);
}

function deeper(v: object, left: number): boolean {
  if (left === 0) return true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x === 'object' && x !== null && deeper(x, left - 1)) return true;
    }
    return false;
  }
  for (const k in v) {
    const x: unknown = (v as Record<string, unknown>)[k];
    if (typeof x === 'object' && x !== null && deeper(x, left - 1)) return true;
  }
  return false;
}

/**
 * Whether valid JSON `text` nests objects/arrays deeper than `max`. Strings are skipped with
 * indexOf, so the scan costs about a fifth of JSON.parse on CloudTrail-shaped documents; text
 * shorter than 2 × (max + 1) cannot be that deep and is not scanned at all.
 */
export function exceedsDepth(text: string, max: number): boolean {
  if (text.length < 2 * (max + 1)) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // Jump to the closing quote: one not preceded by an odd number of backslashes.
      for (;;) {
        const q = text.indexOf('"', i + 1);
        if (q < 0) return false;
        let k = q - 1;
        while (text.charCodeAt(k) === BACKSLASH) k--;
        i = q;
        if ((q - 1 - k) % 2 === 0) break;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}
