import type { StateStore } from '../../src/state/store.js';

/** `store` with its liveRuns replaced by `liveRuns(real answer)`; every other member is the store's own. */
function withLiveRunsHook(store: StateStore, liveRuns: (real: Set<string>) => Promise<Set<string>>): StateStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'liveRuns') return async (p: string) => liveRuns(await target.liveRuns(p));
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** A store whose live runs are the given ones besides its own (workers sharing a sink). */
export function withLiveRuns(store: StateStore, extra: string[]): StateStore {
  return withLiveRunsHook(store, async (real) => new Set([...real, ...extra]));
}

/**
 * A store where another worker registers just after the live runs are read: `registered` runs
 * (the worker making its temporary directory or first staging object) before the answer, which
 * does not name that worker, reaches the caller.
 */
export function withLateWorker(store: StateStore, registered: () => Promise<void>): StateStore {
  return withLiveRunsHook(store, async (real) => {
    await registered();
    return real;
  });
}
