/** The CloudWatch position: which windows a pass queries, what a window commits, what may be forgotten. */
import { describe, expect, it } from 'vitest';
import {
  addRange, completeWindow, forgetBefore, intersect, nextSize, nextWindow, openWindow, parsePosition, passRanges, storedPosition, subtract,
  MIN_WINDOW_MS, type GroupPosition, type PassSpec, type Range,
} from '../../src/sources/cloudwatch-window.js';

const M = 60_000;
const H = 60 * M;

describe('ranges', () => {
  it.each<[Range[], Range, Range[]]>([
    [[], [0, 10], [[0, 10]]],
    [[[0, 10]], [10, 20], [[0, 20]]],
    [[[0, 10], [30, 40]], [5, 35], [[0, 40]]],
    [[[20, 30]], [0, 10], [[0, 10], [20, 30]]],
    [[[0, 100]], [10, 20], [[0, 100]]],
  ])('addRange(%j, %j) = %j', (ranges, r, out) => {
    expect(addRange(ranges, r)).toEqual(out);
  });

  it.each<[Range, Range[], Range[], Range[]]>([
    [[0, 100], [], [], [[0, 100]]],
    [[0, 100], [[10, 20], [50, 60]], [[10, 20], [50, 60]], [[0, 10], [20, 50], [60, 100]]],
    [[15, 55], [[10, 20], [50, 60]], [[15, 20], [50, 55]], [[20, 50]]],
    [[0, 10], [[0, 10]], [[0, 10]], []],
    [[0, 10], [[20, 30]], [], [[0, 10]]],
  ])('%j ∩/∖ %j', (r, ranges, inside, outside) => {
    expect(intersect(r, ranges)).toEqual(inside);
    expect(subtract(r, ranges)).toEqual(outside);
  });
});

describe('passes', () => {
  const run = (start: number, end: number, lookback = 5 * M): PassSpec => ({ kind: 'run', start, end, lookback });

  it('a first run queries from startTime to the start of the pass, and never below startTime', () => {
    expect(passRanges(undefined, run(10 * H, 20 * H))).toEqual([[10 * H, 20 * H]]);
  });

  it('a later run re-queries the lookback before the pointer, in one query with what is new', () => {
    const pos: GroupPosition = { pointer: 20 * H, covered: [[10 * H, 20 * H]] };
    expect(passRanges(pos, run(0, 20 * H + M))).toEqual([[20 * H - 5 * M, 20 * H + M]]);
  });

  it('the re-query stops where collection started; a lookback of 0 re-queries nothing', () => {
    const pos: GroupPosition = { pointer: 10 * H + 2 * M, covered: [[10 * H, 10 * H + 2 * M]] };
    expect(passRanges(pos, run(0, 10 * H + 3 * M))).toEqual([[10 * H, 10 * H + 3 * M]]);
    expect(passRanges(pos, run(0, 10 * H + 3 * M, 0))).toEqual([[10 * H + 2 * M, 10 * H + 3 * M]]);
  });

  it('a run skips ranges a backfill already collected ahead of its pointer', () => {
    const pos: GroupPosition = { pointer: 10 * H, covered: [[9 * H, 10 * H], [11 * H, 12 * H]] };
    expect(passRanges(pos, run(0, 13 * H))).toEqual([[10 * H - 5 * M, 11 * H], [12 * H, 13 * H]]);
  });

  it('a backfill queries only what nothing collected, and does not move the pointer', () => {
    const pos: GroupPosition = { pointer: 20 * H, covered: [[5 * H, 6 * H], [10 * H, 20 * H]] };
    const spec: PassSpec = { kind: 'backfill', from: 0, to: 15 * H };
    expect(passRanges(pos, spec)).toEqual([[0, 5 * H], [6 * H, 10 * H]]);
    const after = completeWindow(pos, [0, 5 * H], spec);
    expect(after).toEqual({ pointer: 20 * H, covered: [[0, 6 * H], [10 * H, 20 * H]] });
    expect(passRanges(after, spec)).toEqual([[6 * H, 10 * H]]);
  });

  it('windows cut the ranges into pieces of at most the window size', () => {
    const ranges: Range[] = [[0, 10 * H], [12 * H, 13 * H]];
    const seen: Range[] = [];
    for (let w = nextWindow(ranges, -Infinity, 4 * H); w; w = nextWindow(ranges, w[1], 4 * H)) seen.push(w);
    expect(seen).toEqual([[0, 4 * H], [4 * H, 8 * H], [8 * H, 10 * H], [12 * H, 13 * H]]);
  });

  it('a run window fixes the pointer when it opens; completed, it joins the covered ranges and moves the pointer', () => {
    const spec = run(10 * H, 30 * H);
    const open = openWindow(undefined, [10 * H, 16 * H], spec);
    expect(open).toEqual({ pointer: 10 * H, covered: [] });
    const done = completeWindow(open, [10 * H, 16 * H], spec);
    expect(done).toEqual({ pointer: 16 * H, covered: [[10 * H, 16 * H]] });
    expect(storedPosition(done)).toEqual({ pointer: 16 * H, pointerTime: '1970-01-01T16:00:00.000Z', covered: [[10 * H, 16 * H]] });
  });

  it('a backfill window is partial until it completes; a run in between keeps it partial', () => {
    const backfill: PassSpec = { kind: 'backfill', from: 0, to: 10 * H };
    const start: GroupPosition = { pointer: 20 * H, covered: [[15 * H, 20 * H]] };
    const open = openWindow(start, [2 * H, 3 * H], backfill);
    expect(open).toEqual({ pointer: 20 * H, covered: [[15 * H, 20 * H]], partial: [[2 * H, 3 * H]] });
    const afterRun = completeWindow(openWindow(open, [20 * H - 5 * M, 21 * H], run(0, 21 * H)), [20 * H - 5 * M, 21 * H], run(0, 21 * H));
    expect(afterRun).toEqual({ pointer: 21 * H, covered: [[15 * H, 21 * H]], partial: [[2 * H, 3 * H]] });
    expect(parsePosition(JSON.parse(JSON.stringify(storedPosition(afterRun))), 's')).toEqual(afterRun);
    expect(completeWindow(afterRun, [2 * H, 3 * H], backfill)).toEqual({ pointer: 21 * H, covered: [[2 * H, 3 * H], [15 * H, 21 * H]] });
  });

  it('rejects a stored value that is not a group position', () => {
    expect(() => parsePosition({ covered: [[2, 1]] }, 'cloudwatch:/g')).toThrow(/position of cloudwatch:\/g is not/);
    expect(() => parsePosition({ covered: [], partial: [1, 2] }, 's')).toThrow(/not a CloudWatch group position/);
    expect(parsePosition(undefined, 's')).toBeUndefined();
  });
});

describe('forgetting ids', () => {
  it('keeps every id a later re-query can return: above pointer − lookback and inside a partial backfill window', () => {
    expect(forgetBefore(undefined, 5 * M, 'run')).toBeUndefined();
    expect(forgetBefore({ covered: [[0, H]], partial: [[H, 2 * H]] }, 5 * M, 'backfill')).toBeUndefined();
    expect(forgetBefore({ pointer: 10 * H, covered: [] }, 5 * M, 'run')).toBe(10 * H - 5 * M);
    // A backfill window far below the pointer, half committed: its ids stay until it completes,
    // and it holds back only the pruning of backfill ids.
    const pos: GroupPosition = { pointer: 10 * H, covered: [], partial: [[H, 2 * H], [4 * H, 5 * H]] };
    expect(forgetBefore(pos, 5 * M, 'backfill')).toBe(H);
    expect(forgetBefore(pos, 5 * M, 'run')).toBe(10 * H - 5 * M);
  });

  it('busy windows halve the next one, quiet ones double it, within bounds', () => {
    expect(nextSize(4 * H, 60_000, 6 * H)).toBe(2 * H);
    expect(nextSize(4 * H, 20_000, 6 * H)).toBe(4 * H);
    expect(nextSize(4 * H, 10, 6 * H)).toBe(6 * H);
    expect(nextSize(MIN_WINDOW_MS, 1e6, 6 * H)).toBe(MIN_WINDOW_MS);
    expect(nextSize(5000, 1e6, 5000)).toBe(5000);
  });
});
