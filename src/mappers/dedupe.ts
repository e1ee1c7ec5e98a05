/**
 * `dedupe`: drops a row whose key was already seen within the window, across artifacts and across
 * runs. Keys live in memory for the window and in the state store: at create time the keys the
 * store still remembers are loaded, and each new key is handed to `RecordContext.remember`, which
 * the engine commits in the same transaction as the row that carried it. A run killed before a
 * commit therefore forgets exactly the keys of the rows it did not deliver.
 */
import { PipeError } from '../errors.js';
import type { ComponentSpec } from '../spec.js';
import type { ComponentContext, Mapper, MapResult, RecordContext, Row } from '../types.js';
import { getPath, parsePath } from './path.js';

export const spec: ComponentSpec = {
  kind: 'mapper',
  type: 'dedupe',
  summary: 'Drops rows whose key was already seen within a time window (remembered across runs).',
  consumes: 'rows',
  options: {
    key: {
      type: 'string',
      default: '_id',
      description: 'Field or path whose value identifies a duplicate. Rows without it pass.',
      example: 'requestID',
    },
    window: {
      type: 'duration',
      default: 86_400_000,
      min: 1,
      description: 'How long a key is remembered after it is first seen.',
      example: '24h',
    },
  },
};

/**
 * Keys with their expiry, in insertion order. Every expiry is "first seen + window", so insertion
 * order is expiry order and expired keys are evicted from the front: memory holds one window.
 */
export class KeyWindow {
  readonly #expires = new Map<string, number>();
  constructor(readonly windowMs: number) {}

  get size(): number {
    return this.#expires.size;
  }

  /** Keys remembered by the store with their expiry, oldest first (so eviction stays in order). */
  load(keys: ReadonlyMap<string, number>, now: number): void {
    for (const [k, expiresAt] of keys) if (expiresAt > now) this.#expires.set(k, expiresAt);
  }

  /** The expiry of a key seen for the first time in the window (now remembered), or undefined for a duplicate. */
  admit(key: string, now: number): number | undefined {
    this.#evict(now);
    const seen = this.#expires.get(key);
    if (seen !== undefined && seen > now) return undefined;
    const expiresAt = now + this.windowMs;
    this.#expires.delete(key);
    this.#expires.set(key, expiresAt);
    return expiresAt;
  }

  #evict(now: number): void {
    for (const [k, exp] of this.#expires) {
      if (exp > now) return;
      this.#expires.delete(k);
    }
  }
}

/** The text a key value is remembered by; undefined when the row has none. */
export function keyText(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') return value;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

export async function create(options: Record<string, unknown>, ctx: ComponentContext): Promise<Mapper> {
  const keyOption = options.key ?? '_id';
  const windowMs = options.window ?? spec.options.window!.default;
  if (typeof keyOption !== 'string') throw new PipeError('PIPE_CONFIG_INVALID', 'dedupe key: expected a field name');
  if (typeof windowMs !== 'number' || !(windowMs > 0)) {
    throw new PipeError('PIPE_CONFIG_INVALID', 'dedupe window: expected a positive duration');
  }
  const path = parsePath(keyOption, 'dedupe key');
  const namespace = `dedupe:${keyOption}`;
  const seen = new KeyWindow(windowMs);
  seen.load(await ctx.store.rememberedKeys(ctx.pipeline, namespace, Date.now()), Date.now());

  const artifactMapper = {
    map(row: unknown, rc: RecordContext): MapResult {
      const key = keyText(getPath(row, path));
      if (key === undefined) return row as Row;
      const expiresAt = seen.admit(key, Date.now());
      if (expiresAt === undefined) return null;
      rc.remember(namespace, key, expiresAt);
      return row as Row;
    },
  };
  return { forArtifact: () => artifactMapper };
}
