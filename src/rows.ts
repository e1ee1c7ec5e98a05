/** Helpers every mapper uses for the three fields `pipe` adds to a row. */
import { hash } from 'node:crypto';

/**
 * A deterministic `_id` from the artifact identity and the record's position in it: the first 22
 * base64url characters of sha256(identity NUL seq [NUL sub]). One-shot hashing is about twice as
 * fast as a Hash object per row, which mattered for line formats (VPC Flow: one `_id` per line).
 */
export function positionId(identity: string, seq: number, sub = 0): string {
  const input = sub ? `${identity}\0${seq}\0${sub}` : `${identity}\0${seq}`;
  return hash('sha256', input, 'base64url').slice(0, 22);
}

/** ISO 8601 UTC with milliseconds, or undefined when the input is not a valid time. */
export function isoTime(value: unknown): string | undefined {
  // CloudTrail's `2024-03-01T12:00:00Z`: add the milliseconds without a Date round trip when the
  // fields are in range (the Date path below still judges anything unusual).
  if (typeof value === 'string') {
    if (value.length === 20 && value.charCodeAt(19) === Z && isPlainUtcSeconds(value)) return `${value.slice(0, 19)}.000Z`;
    // Already ISO 8601 UTC with milliseconds (`2024-03-01T12:00:00.123Z`): returned as it is.
    if (value.length === 24 && value.charCodeAt(23) === Z && value.charCodeAt(19) === DOT && digits(value, 20, 3) >= 0 && isPlainUtcSeconds(value)) return value;
  }
  let d: Date;
  if (value instanceof Date) d = value;
  else if (typeof value === 'number') d = new Date(value);
  else if (typeof value === 'string' && value !== '') d = new Date(value);
  else return undefined;
  const t = d.getTime();
  return Number.isNaN(t) ? undefined : d.toISOString();
}

const D0 = 48;
const Z = 0x5a;
const DOT = 0x2e;

function digits(t: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const c = t.charCodeAt(i) - D0;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** `YYYY-MM-DDTHH:MM:SS` (then `Z` or `.mmmZ`, checked by the caller) with every field in range (a day past its month's end is not). */
function isPlainUtcSeconds(t: string): boolean {
  if (t.charCodeAt(4) !== 0x2d || t.charCodeAt(7) !== 0x2d || t.charCodeAt(10) !== 0x54 || t.charCodeAt(13) !== 0x3a || t.charCodeAt(16) !== 0x3a) return false;
  const year = digits(t, 0, 4);
  const month = digits(t, 5, 2);
  const day = digits(t, 8, 2);
  const h = digits(t, 11, 2);
  const m = digits(t, 14, 2);
  const s = digits(t, 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 59) return false;
  return day <= 28 || new Date(Date.UTC(year, month - 1, day)).getUTCDate() === day;
}
