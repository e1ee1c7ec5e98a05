/** Helpers every mapper uses for the three fields `pipe` adds to a row. */
import { createHash } from 'node:crypto';

/** A deterministic `_id` from the artifact identity and the record's position in it. */
export function positionId(identity: string, seq: number, sub = 0): string {
  const h = createHash('sha256').update(identity).update('\0').update(String(seq));
  if (sub) h.update('\0').update(String(sub));
  return h.digest('base64url').slice(0, 22);
}

/** ISO 8601 UTC with milliseconds, or undefined when the input is not a valid time. */
export function isoTime(value: unknown): string | undefined {
  let d: Date;
  if (value instanceof Date) d = value;
  else if (typeof value === 'number') d = new Date(value);
  else if (typeof value === 'string' && value !== '') d = new Date(value);
  else return undefined;
  const t = d.getTime();
  return Number.isNaN(t) ? undefined : d.toISOString();
}
