/**
 * Listing marks: how an incremental run lists only what is new. S3 lists keys in order, and each
 * leaf prefix (a region of a CloudTrail layout, or the whole `prefix`) keeps a mark: a key such that
 * every key up to it is settled for good. The next run lists the leaf with StartAfter = mark, so
 * its List calls grow with the keys added since, not with the bucket.
 *
 * A mark may pass a key only when that key, and every key listed before it since the mark, is
 * terminal in the state store (done, failed or skipped): an object still in flight when the process
 * is killed stays after the mark and is listed again. It may not pass a key younger than `settle`
 * either, because a writer can still add a key that sorts before a recent one (two deliveries in
 * the same minute, a slow multipart upload). Keys the pipeline's include/exclude leave out are
 * passed (the mark's stream name carries the filters); keys left out by a time window are not, so
 * a later run with another window still sees them. A listing that did not start at the mark (a
 * backfill starting at `--from`) has no right to move it at all.
 *
 * Marks are derived from committed state, so losing a save costs a little re-listing, never a row.
 */
import { createHash } from 'node:crypto';
import type { ListContext } from '../types.js';

export interface MarkValue {
  after: string;
}

/** The position stream of one leaf: `s3://bucket/prefix`, plus a tag when include/exclude are set. */
export function markStream(bucket: string, prefix: string, include: string[], exclude: string[]): string {
  const defaults = include.length === 1 && include[0] === '**' && exclude.length === 0;
  if (defaults) return `s3://${bucket}/${prefix}`;
  const tag = createHash('sha256').update(JSON.stringify([include, exclude])).digest('hex').slice(0, 8);
  return `s3://${bucket}/${prefix} [filters ${tag}]`;
}

/** S3's key order: UTF-8 bytes, which JavaScript's UTF-16 comparison does not always match. */
export function keyCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function parseMark(value: unknown): string | undefined {
  const after = (value as Partial<MarkValue> | undefined)?.after;
  return typeof after === 'string' && after !== '' ? after : undefined;
}

const TERMINAL = new Set(['done', 'failed', 'skipped']);

interface Entry {
  key: string;
  /** undefined: never passable in this listing (left out by a time window). */
  identity: string | undefined;
  /** Epoch ms from which the key is old enough to pass. */
  settledAt: number;
}

/** Most keys a blocked mark waits behind before it stops tracking (bounded memory); it resumes next run. */
const MAX_PENDING = 50_000;

export class MarkTracker {
  #ctx: Pick<ListContext, 'artifactState' | 'savePosition' | 'log'>;
  #stream: string;
  #saved: string | undefined;
  #mark: string | undefined;
  #pending: Entry[] = [];
  #frozen: boolean;
  #settle: number;
  #now: () => number;

  /**
   * `stored` is the mark read at the start; `contiguous` says whether the listing starts right after
   * it (or at the leaf's first key when there is none), the only case in which it may move.
   */
  constructor(ctx: Pick<ListContext, 'artifactState' | 'savePosition' | 'log'>, stream: string, stored: string | undefined,
    contiguous: boolean, settle: number, now: () => number = Date.now) {
    this.#ctx = ctx;
    this.#stream = stream;
    this.#saved = stored;
    this.#mark = stored;
    this.#frozen = !contiguous;
    this.#settle = settle;
    this.#now = now;
  }

  get mark(): string | undefined {
    return this.#mark;
  }

  /** A listed key, in listing order. Identity undefined: the key blocks the mark for this listing. */
  listed(key: string, identity: string | undefined, lastModified: Date): void {
    if (this.#frozen) return;
    if (this.#pending.length >= MAX_PENDING) {
      this.#ctx.log.debug(`listing mark ${this.#stream}: ${MAX_PENDING} keys wait behind ${this.#pending[0]?.key}; the next run goes on from the mark`);
      this.#frozen = true;
      this.#pending = [];
      return;
    }
    this.#pending.push({ key, identity, settledAt: lastModified.getTime() + this.#settle });
    if (identity === undefined) this.#frozen = true;
  }

  /** A key the pipeline never collects (its include/exclude): it does not hold the mark back. */
  passed(key: string): void {
    if (this.#frozen) return;
    if (this.#pending.length === 0) this.#mark = key;
    else this.#pending.push({ key, identity: '', settledAt: 0 });
  }

  /** Moves the mark over the terminal, settled keys at the head of the listing and stores it if it moved. */
  async advance(): Promise<void> {
    const now = this.#now();
    while (this.#pending.length) {
      const head = this.#pending[0]!;
      if (head.identity === undefined || head.settledAt > now) break;
      if (head.identity !== '') {
        const state = await this.#ctx.artifactState(head.identity);
        if (!state || !TERMINAL.has(state.status)) break;
      }
      this.#mark = head.key;
      this.#pending.shift();
    }
    // Marks only move forward: a listing from the start (--retry-failed) must not pull one back.
    if (this.#mark !== undefined && (this.#saved === undefined || keyCompare(this.#mark, this.#saved) > 0)) {
      await this.#ctx.savePosition(this.#stream, { after: this.#mark } satisfies MarkValue);
      this.#saved = this.#mark;
    }
  }
}
