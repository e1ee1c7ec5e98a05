import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { create, KeyWindow, keyText, spec } from '../../src/mappers/dedupe.js';
import { create as createCloudTrail } from '../../src/mappers/cloudtrail.js';
import type { StateStore } from '../../src/state/store.js';
import type { Mapper, Row } from '../../src/types.js';
import { artifact, fakeContext, fixtureJson, run } from './helpers.js';

const T0 = Date.parse('2024-03-01T00:00:00.000Z');
const HOUR = 3_600_000;

/** A store that only remembers keys: what the engine commits with each chunk lands here. */
class FakeStore {
  keys: Array<{ pipeline: string; namespace: string; key: string; expiresAt: number }> = [];
  calls: Array<[string, string, number]> = [];
  async rememberedKeys(pipeline: string, namespace: string, now: number): Promise<Map<string, number>> {
    this.calls.push([pipeline, namespace, now]);
    return new Map(this.keys.filter((k) => k.pipeline === pipeline && k.namespace === namespace && k.expiresAt > now).map((k) => [k.key, k.expiresAt]));
  }
  commit(pipeline: string, remembered: Array<{ namespace: string; key: string; expiresAt: number }>): void {
    for (const r of remembered) this.keys.push({ pipeline, ...r });
  }
}

function rows(...ids: string[]): Row[] {
  return ids.map((id) => ({ _id: id, _time: '2024-03-01T00:00:00.000Z', _source: 'file:///x' }));
}

async function dedupe(store: FakeStore, options: Record<string, unknown> = {}): Promise<Mapper> {
  return create({ key: '_id', window: 24 * HOUR, ...options }, fakeContext(store as unknown as Partial<StateStore>));
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(T0);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('dedupe', () => {
  it('drops repeated keys within one run and remembers each new key once', async () => {
    const store = new FakeStore();
    const out = run([await dedupe(store)], rows('a', 'b', 'a', 'c', 'b'));
    expect(out.rows.map((r) => r._id)).toEqual(['a', 'b', 'c']);
    expect(out.filtered).toBe(2);
    expect(out.remembered).toEqual(['a', 'b', 'c'].map((key) => ({ namespace: 'dedupe:_id', key, expiresAt: T0 + 24 * HOUR })));
    expect(store.calls).toEqual([['test', 'dedupe:_id', T0]]);
  });

  it('holds across runs: a second instance sharing the store drops what the first committed', async () => {
    const store = new FakeStore();
    const first = run([await dedupe(store)], rows('a', 'b'));
    store.commit('test', first.remembered);

    vi.setSystemTime(T0 + HOUR);
    const second = run([await dedupe(store)], rows('b', 'c', 'a', 'c'));
    expect(second.rows.map((r) => r._id)).toEqual(['c']);
    expect(second.remembered.map((r) => r.key)).toEqual(['c']);
    store.commit('test', second.remembered);

    // Past the window of a and b (24h after T0) but within c's.
    vi.setSystemTime(T0 + 24 * HOUR + 1);
    const third = run([await dedupe(store)], rows('a', 'b', 'c'));
    expect(third.rows.map((r) => r._id)).toEqual(['a', 'b']);
  });

  it('does not drop keys that were never committed (a run killed before its commit)', async () => {
    const store = new FakeStore();
    run([await dedupe(store)], rows('a'));
    const again = run([await dedupe(store)], rows('a'));
    expect(again.rows.map((r) => r._id)).toEqual(['a']);
  });

  it('shares one memory across the artifacts of a run', async () => {
    const m = await dedupe(new FakeStore());
    expect(run([m], rows('a', 'b'), artifact('file:///1')).rows).toHaveLength(2);
    expect(run([m], rows('b', 'c'), artifact('file:///2')).rows.map((r) => r._id)).toEqual(['c']);
  });

  it('lets a key through again once its window has passed in memory', async () => {
    const m = await dedupe(new FakeStore(), { window: 1000 });
    expect(run([m], rows('a')).rows).toHaveLength(1);
    vi.setSystemTime(T0 + 999);
    expect(run([m], rows('a')).rows).toHaveLength(0);
    vi.setSystemTime(T0 + 1000);
    const later = run([m], rows('a'));
    expect(later.rows).toHaveLength(1);
    expect(later.remembered).toEqual([{ namespace: 'dedupe:_id', key: 'a', expiresAt: T0 + 2000 }]);
  });

  it('dedupes on a nested key and passes rows without one', async () => {
    const store = new FakeStore();
    const chain = [createCloudTrail({}, fakeContext()), await dedupe(store, { key: 'userIdentity.accountId' })];
    const out = run(chain, [fixtureJson('public/opentelemetry-collector-contrib/cloudtrail_log.json')]);
    // Accounts: 123456789012 ×2, 123456789012, (Insight: none), 111122223333, 123456789012, 111122223333.
    expect(out.rows.map((r) => r.eventName ?? r.eventType)).toEqual(['StartInstances', 'AwsCloudTrailInsight', 'UpdateTrail']);
    expect(out.remembered.map((r) => r.key)).toEqual(['123456789012', '111122223333']);
    expect(store.calls[0]![1]).toBe('dedupe:userIdentity.accountId');
  });

  it.each<[Record<string, unknown>, string]>([
    [{ window: 0 }, 'dedupe window: expected a positive duration'],
    [{ key: 5 }, 'dedupe key: expected a field name'],
    [{ key: 'a..b' }, 'dedupe key: unexpected "." at column 3 in "a..b"'],
  ])('rejects %j at create time', async (options, message) => {
    await expect(dedupe(new FakeStore(), options)).rejects.toMatchObject({ code: 'PIPE_CONFIG_INVALID', message });
  });

  it('has defaults for both options', () => {
    expect(spec.options.key).toMatchObject({ type: 'string', default: '_id' });
    expect(spec.options.window).toMatchObject({ type: 'duration', default: 86_400_000 });
  });
});

describe('KeyWindow', () => {
  it('evicts expired keys so memory holds one window', () => {
    const w = new KeyWindow(1000);
    for (let i = 0; i < 10_000; i++) w.admit(`k${i}`, T0 + i / 100);
    expect(w.size).toBe(10_000);
    w.admit('late', T0 + 1050);
    // Keys first seen before T0+50 expired by T0+1050; the rest are live.
    expect(w.size).toBe(10_000 - 5001 + 1);
    w.admit('later', T0 + 5000);
    expect(w.size).toBe(1);
  });

  it('keeps loaded keys until their stored expiry', () => {
    const w = new KeyWindow(1000);
    w.load(new Map([['gone', T0 - 1], ['x', T0 + 400], ['y', T0 + 999]]), T0);
    expect(w.admit('gone', T0)).toBe(T0 + 1000);
    expect(w.admit('x', T0 + 399)).toBeUndefined();
    expect(w.admit('x', T0 + 400)).toBe(T0 + 1400);
    expect(w.admit('y', T0 + 998)).toBeUndefined();
  });

  it('turns key values into text', () => {
    expect([keyText('a'), keyText(42), keyText(true), keyText({ b: 1 }), keyText(null), keyText(undefined), keyText('')]).toEqual(['a', '42', 'true', '{"b":1}', undefined, undefined, undefined]);
  });
});
