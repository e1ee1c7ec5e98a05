import { describe, expect, it } from 'vitest';
import { keyCompare, markStream, MarkTracker, parseMark } from '../../src/sources/s3-marks.js';
import type { ArtifactState, ArtifactStatus } from '../../src/state/store.js';

const T0 = Date.parse('2024-03-01T00:00:00Z');

function fakeCtx(states: Record<string, ArtifactStatus>) {
  const saved: Array<{ stream: string; value: unknown }> = [];
  return {
    saved,
    ctx: {
      artifactState: async (id: string) => (states[id] ? ({ identity: id, status: states[id] } as ArtifactState) : undefined),
      savePosition: async (stream: string, value: unknown) => { saved.push({ stream, value }); },
      log: { debug() {}, info() {}, warn() {}, error() {} },
    },
  };
}

const old = new Date(T0 - 3_600_000);

describe('listing marks', () => {
  it('pass every terminal key up to the first one still in flight, and no further', async () => {
    const states: Record<string, ArtifactStatus> = { a: 'done', b: 'failed', c: 'skipped', d: 'in_progress', e: 'done' };
    const { ctx, saved } = fakeCtx(states);
    const m = new MarkTracker(ctx, 's3://b/p/', undefined, true, 0, () => T0);
    for (const k of ['a', 'b', 'c', 'd', 'e']) m.listed(`p/${k}`, k, old);
    await m.advance();
    expect(m.mark).toBe('p/c');
    expect(saved).toEqual([{ stream: 's3://b/p/', value: { after: 'p/c' } }]);
    // d commits: the mark moves over d and e at the next check.
    states.d = 'done';
    await m.advance();
    expect(m.mark).toBe('p/e');
    expect(saved.at(-1)).toEqual({ stream: 's3://b/p/', value: { after: 'p/e' } });
  });

  it('do not pass a key younger than settle, nor anything after it', async () => {
    const { ctx } = fakeCtx({ a: 'done', b: 'done', c: 'done' });
    let now = T0;
    const m = new MarkTracker(ctx, 's', undefined, true, 15 * 60_000, () => now);
    m.listed('a', 'a', new Date(T0 - 20 * 60_000));
    m.listed('b', 'b', new Date(T0 - 5 * 60_000));
    m.listed('c', 'c', new Date(T0 - 30 * 60_000));
    await m.advance();
    expect(m.mark).toBe('a');
    now = T0 + 10 * 60_000;
    await m.advance();
    expect(m.mark).toBe('c');
  });

  it('pass keys the filters leave out, and stop for good at a key a time window leaves out', async () => {
    const { ctx } = fakeCtx({ a: 'done', c: 'done' });
    const m = new MarkTracker(ctx, 's', undefined, true, 0, () => T0);
    m.passed('0-filtered');
    m.listed('a', 'a', old);
    m.passed('b-filtered');
    m.listed('b2', undefined, old);
    m.listed('c', 'c', old);
    await m.advance();
    expect(m.mark).toBe('b-filtered');
  });

  it('never move when the listing did not start at the mark, and never move backwards', async () => {
    const { ctx, saved } = fakeCtx({ a: 'done', b: 'done' });
    const detached = new MarkTracker(ctx, 's', 'a', false, 0, () => T0);
    detached.listed('b', 'b', old);
    await detached.advance();
    expect(detached.mark).toBe('a');
    // --retry-failed lists from the start: the mark comes back to where it was, not before.
    const fromStart = new MarkTracker(ctx, 's', 'b', true, 0, () => T0);
    fromStart.listed('a', 'a', old);
    await fromStart.advance();
    expect(saved).toEqual([]);
    fromStart.listed('b', 'b', old);
    fromStart.listed('c', 'c', old);
    await fromStart.advance();
    expect(saved).toEqual([]);
  });

  it('stop tracking, to bound memory, when too many keys wait behind one still in flight', async () => {
    const states: Record<string, ArtifactStatus> = { k0: 'in_progress' };
    const { ctx, saved } = fakeCtx(states);
    const m = new MarkTracker(ctx, 's', undefined, true, 0, () => T0);
    for (let i = 0; i <= 50_000; i++) {
      states[`k${i + 1}`] = 'done';
      m.listed(`k${String(i).padStart(6, '0')}`, `k${i}`, old);
    }
    states.k0 = 'done';
    await m.advance();
    expect(m.mark).toBeUndefined();
    expect(saved).toEqual([]);
  });

  it('name their stream by bucket, prefix and filters, and compare keys in S3 (UTF-8) order', () => {
    expect(markStream('b', 'AWSLogs/', ['**'], [])).toBe('s3://b/AWSLogs/');
    const tagged = markStream('b', 'AWSLogs/', ['**/*.gz'], []);
    expect(tagged).toMatch(/^s3:\/\/b\/AWSLogs\/ \[filters [0-9a-f]{8}\]$/);
    expect(markStream('b', 'AWSLogs/', ['**/*.gz'], ['x/**'])).not.toBe(tagged);
    expect(parseMark({ after: 'k' })).toBe('k');
    expect(parseMark(undefined)).toBeUndefined();
    expect(parseMark({ after: 3 })).toBeUndefined();
    // U+FF5E sorts before U+1F600 in UTF-8 bytes, after it in UTF-16 code units.
    expect('\uff5e' > '\u{1f600}').toBe(true);
    expect(keyCompare('\uff5e', '\u{1f600}')).toBeLessThan(0);
  });
});
