/**
 * Where a CloudWatch log group stands, and which time windows a pass queries next. Pure functions:
 * the source around them does the calls and the commits.
 *
 * A group's position (committed with the rows, one per group) is the set of time ranges whose events
 * were collected (`covered`, sorted, disjoint, half-open [from, to) in epoch ms), the run `pointer`,
 * and the backfill windows a crash or a stop may have left half-committed (`partial`).
 *
 * - A `run` pass re-queries [pointer − lookback, pointer) (only where it was collected before: the
 *   source never reaches below where it started) and then the uncovered part of [pointer, end), with
 *   `end` the time the pass started. Events that arrived late, stamped inside the lookback, are in
 *   the re-query; events seen before are skipped by their eventId, remembered with the rows.
 * - A `backfill` pass queries the uncovered part of [from, to): history nothing has collected yet.
 * - Windows are at most `size` long and each one is committed when it ends, so a crash costs the
 *   re-reading of one window. Inside a window, rows commit as pages arrive, and their eventIds make
 *   a re-read after a crash skip them.
 *
 * Event ids are remembered per group with the event's time + 1 as their expiry, on the event-time
 * axis rather than the wall clock: a key may be dropped once no future query can return the event,
 * i.e. once its time is below `forgetBefore(position)`. Downtime of any length cannot expire a key
 * that a restart still needs. Ids of run windows are needed from pointer − lookback on (a run window
 * never starts below that); ids of backfill windows also inside a `partial` window, which may lie far
 * below the pointer, so they are kept apart (`kind` of the namespace) and one unfinished backfill
 * never holds back the pruning of the run's ids.
 */
import { PipeError } from '../errors.js';

/** Half-open [from, to), epoch ms. */
export type Range = [number, number];

export interface GroupPosition {
  /** The run's pointer: the end of the last window a run completed (absent until a run starts). */
  pointer?: number;
  /** Time ranges whose events are collected, sorted and disjoint. */
  covered: Range[];
  /** Backfill windows whose rows are partly committed (sorted, disjoint). */
  partial?: Range[];
}

export type PassSpec =
  | { kind: 'run'; start: number; end: number; lookback: number }
  | { kind: 'backfill'; from: number; to: number };

function isRange(v: unknown): v is Range {
  return Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && Number.isSafeInteger(v[1]) && (v[0] as number) < (v[1] as number);
}

/** Reads a stored position; undefined for a group never collected. */
export function parsePosition(value: unknown, stream: string): GroupPosition | undefined {
  if (value === undefined || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const ok = typeof v === 'object' && Array.isArray(v.covered) && v.covered.every(isRange)
    && (v.pointer === undefined || Number.isSafeInteger(v.pointer)) && (v.partial === undefined || (Array.isArray(v.partial) && v.partial.every(isRange)));
  if (!ok) throw new PipeError('PIPE_STATE_CORRUPT', `position of ${stream} is not a CloudWatch group position: ${JSON.stringify(value).slice(0, 200)}`);
  return {
    covered: (v.covered as Range[]).map(([a, b]) => [a, b]),
    ...(v.pointer !== undefined ? { pointer: v.pointer as number } : {}),
    ...(v.partial !== undefined ? { partial: (v.partial as Range[]).map(([a, b]) => [a, b] as Range) } : {}),
  };
}

/** The stored form: the position plus the pointer as ISO text, for people reading `pipe status`. */
export function storedPosition(pos: GroupPosition): Record<string, unknown> {
  return {
    ...(pos.pointer !== undefined ? { pointer: pos.pointer, pointerTime: new Date(pos.pointer).toISOString() } : {}),
    covered: pos.covered,
    ...(pos.partial?.length ? { partial: pos.partial } : {}),
  };
}

/** `ranges` ∪ `r`, sorted and merged (touching ranges merge). */
export function addRange(ranges: Range[], r: Range): Range[] {
  const all = [...ranges, r].sort((x, y) => x[0] - y[0]);
  const out: Range[] = [];
  for (const [a, b] of all) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** The parts of `r` inside `ranges`. */
export function intersect(r: Range, ranges: Range[]): Range[] {
  const out: Range[] = [];
  for (const [a, b] of ranges) {
    const lo = Math.max(a, r[0]);
    const hi = Math.min(b, r[1]);
    if (lo < hi) out.push([lo, hi]);
  }
  return out;
}

/** The parts of `r` outside `ranges`. */
export function subtract(r: Range, ranges: Range[]): Range[] {
  const out: Range[] = [];
  let at = r[0];
  for (const [a, b] of ranges) {
    if (b <= at) continue;
    if (a >= r[1]) break;
    if (a > at) out.push([at, a]);
    at = Math.max(at, b);
  }
  if (at < r[1]) out.push([at, r[1]]);
  return out;
}

/** The time ranges a pass queries, in order. */
export function passRanges(pos: GroupPosition | undefined, spec: PassSpec): Range[] {
  const covered = pos?.covered ?? [];
  if (spec.kind === 'backfill') return spec.from < spec.to ? subtract([spec.from, spec.to], covered) : [];
  const p = pos?.pointer ?? spec.start;
  const requery = spec.lookback > 0 ? intersect([Math.max(0, p - spec.lookback), Math.min(p, spec.end)], covered) : [];
  const ahead = p < spec.end ? subtract([p, spec.end], covered) : [];
  // Merge the re-query with what follows it, so the usual poll is a single query.
  return ahead.reduce(addRange, requery);
}

/** The next window of a pass: the first `size` ms of what is left of `ranges` at or after `at`. */
export function nextWindow(ranges: Range[], at: number, size: number): Range | undefined {
  for (const [a, b] of ranges) {
    if (b <= at) continue;
    const from = Math.max(a, at);
    return [from, Math.min(b, from + size)];
  }
  return undefined;
}

/** The position once window `w` of a pass is complete: covered, and no longer partial. */
export function completeWindow(pos: GroupPosition | undefined, w: Range, spec: PassSpec): GroupPosition {
  const covered = addRange(pos?.covered ?? [], w);
  const next: GroupPosition = { covered };
  const pointer = spec.kind === 'run' ? Math.max(pos?.pointer ?? spec.start, w[1]) : pos?.pointer;
  if (pointer !== undefined) next.pointer = pointer;
  const partial = (pos?.partial ?? []).flatMap((r) => subtract(r, covered));
  if (partial.length) next.partial = partial;
  return next;
}

/** The position while window `w` is being read: a backfill window's rows commit with it `partial`. */
export function openWindow(pos: GroupPosition | undefined, w: Range, spec: PassSpec): GroupPosition {
  const next: GroupPosition = { covered: pos?.covered ?? [] };
  // The first run fixes its starting point, so a relative startTime is not re-read after a crash.
  const pointer = spec.kind === 'run' ? (pos?.pointer ?? spec.start) : pos?.pointer;
  if (pointer !== undefined) next.pointer = pointer;
  const partial = spec.kind === 'backfill' ? addRange(pos?.partial ?? [], w) : pos?.partial ?? [];
  if (partial.length) next.partial = partial;
  return next;
}

/**
 * Ids (of `kind` windows) with a time below this are never returned by a later query, so they may
 * be forgotten. Undefined while nothing may be forgotten yet (no run has fixed its pointer).
 */
export function forgetBefore(pos: GroupPosition | undefined, lookback: number, kind: PassSpec['kind']): number | undefined {
  if (pos?.pointer === undefined) return undefined;
  const below = pos.pointer - lookback;
  return kind === 'backfill' && pos.partial?.length ? Math.min(below, pos.partial[0]![0]) : below;
}

/** Adapts a window's length to how busy the group is: a busy window halves the next, a quiet one doubles it. */
export function nextSize(size: number, events: number, max: number): number {
  if (events > BUSY_WINDOW_EVENTS) return Math.max(Math.min(MIN_WINDOW_MS, max), Math.floor(size / 2));
  if (events < QUIET_WINDOW_EVENTS) return Math.min(max, size * 2);
  return size;
}

export const BUSY_WINDOW_EVENTS = 50_000;
export const QUIET_WINDOW_EVENTS = 10_000;
export const MIN_WINDOW_MS = 60_000;
