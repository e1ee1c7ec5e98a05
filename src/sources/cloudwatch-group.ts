/**
 * Reading one log group, window by window (see cloudwatch-window.ts for the position it keeps).
 *
 * A window is one FilterLogEvents query, paged until a response comes without `nextToken` (a page
 * may be empty and still carry a token). Each page becomes one chunk: its events not seen before,
 * their ids to remember, and the group's position, which commit together in one transaction. The
 * last page's chunk carries the position with the window complete; the others carry it with the
 * window `partial`, so a crash inside a window re-reads that window and skips the ids it committed.
 *
 * Ids are remembered in memory (seeded from the state at start) for as long as a later query of
 * this process may return their event, and in the state for as long as a later run may: those of run
 * windows and of backfill windows in two namespaces, each pruned by its own rule (cloudwatch-window.ts).
 */
import { PipeError } from '../errors.js';
import { cloudWatchUri } from '../mappers/common.js';
import { isoTime } from '../rows.js';
import type { ComponentContext, ReadContext, Row, StreamChunk } from '../types.js';
import type { GroupRef, LogEvent, LogsApi } from './cloudwatch-api.js';
import {
  completeWindow, forgetBefore, nextSize, nextWindow, openWindow, parsePosition, passRanges, storedPosition, subtract,
  type GroupPosition, type PassSpec, type Range,
} from './cloudwatch-window.js';

export interface GroupReadOptions {
  streams: string[] | undefined;
  streamPrefix: string | undefined;
  filterPattern: string | undefined;
  lookback: number;
  window: number;
  parseJson: boolean;
}

/** FilterLogEvents takes at most 100 stream names per call. */
const STREAM_NAMES_PER_CALL = 100;
/** Remembered ids are pruned from the state after at least this many new ones, or a minute (at a pass start). */
const PRUNE_EVERY_KEYS = 10_000;
const PRUNE_EVERY_MS = 60_000;

/** A message that is a JSON object or array, parsed; anything else as it is. */
export function parseMessage(text: string): unknown {
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * A record as the source hands it over: the event as FilterLogEvents returns it, plus its group, plus
 * `_id`, `_time` and `_source`. Mappers that understand CloudWatch events (cloudtrail, vpcflow) take it
 * as it is; without a mapper it is the row.
 */
export function eventRecord(e: LogEvent, group: GroupRef, parseJson: boolean): Row {
  return {
    message: parseJson ? parseMessage(e.message) : e.message,
    logGroupName: group.name,
    logStreamName: e.logStreamName,
    timestamp: e.timestamp,
    ...(e.ingestionTime !== undefined ? { ingestionTime: e.ingestionTime } : {}),
    eventId: e.eventId,
    _id: e.eventId,
    _time: isoTime(e.timestamp),
    _source: cloudWatchUri(group.name, e.logStreamName),
  };
}

/** The state key of a group's position (and the namespace of its remembered ids). */
export function groupStream(group: GroupRef): string {
  return `cloudwatch:${group.id}`;
}

export class GroupReader {
  readonly group: GroupRef;
  readonly stream: string;
  /** Where the ids of run windows and of backfill windows are remembered. */
  readonly namespaces: Record<PassSpec['kind'], string>;
  #opts: GroupReadOptions;
  #component: ComponentContext;
  #pos: GroupPosition | undefined;
  /** eventId → event time, for every id a later query of this process may return again. */
  #seen = new Map<string, number>();
  #loaded = false;
  #size: number;
  #spec: PassSpec | undefined;
  #ranges: Range[] = [];
  #at = -Infinity;
  #seq = 0;
  #sincePrune = 0;
  #prunedAt = 0;
  /** The last backfill window read to its end in this process. */
  #lastBackfill: Range | undefined;

  constructor(group: GroupRef, opts: GroupReadOptions, component: ComponentContext) {
    this.group = group;
    this.stream = groupStream(group);
    this.namespaces = { run: this.stream, backfill: `${this.stream}#backfill` };
    this.#opts = opts;
    this.#component = component;
    this.#size = opts.window;
  }

  get position(): GroupPosition | undefined {
    return this.#pos;
  }

  /** Loads the committed position and the ids a re-query may return again. */
  async load(ctx: ReadContext): Promise<void> {
    if (this.#loaded) return;
    this.#pos = parsePosition(await ctx.position(this.stream), this.stream);
    for (const keys of await this.#prune(this.#pos)) {
      for (const [key, expiresAt] of keys) this.#seen.set(key, expiresAt - 1);
    }
    this.#loaded = true;
  }

  /** Drops from the state the ids no later query can return, judged by the committed position. */
  async #prune(committed: GroupPosition | undefined, kinds: ReadonlyArray<PassSpec['kind']> = ['run', 'backfill']): Promise<Array<Map<string, number>>> {
    this.#sincePrune = 0;
    this.#prunedAt = Date.now();
    const { store, pipeline } = this.#component;
    const out: Array<Map<string, number>> = [];
    for (const kind of kinds) {
      const before = forgetBefore(committed, this.#opts.lookback, kind) ?? Number.MIN_SAFE_INTEGER;
      out.push(await store.rememberedKeys(pipeline, this.namespaces[kind], before));
    }
    return out;
  }

  async #maybePrune(ctx: ReadContext, passStart: boolean): Promise<void> {
    // Pruning reads back what is kept, about as many ids as are held in memory: amortized over as many new ones.
    const due = this.#sincePrune >= Math.max(PRUNE_EVERY_KEYS, this.#seen.size)
      || (passStart && this.#sincePrune > 0 && Date.now() - this.#prunedAt >= PRUNE_EVERY_MS);
    if (!due) return;
    const committed = parsePosition(await ctx.position(this.stream), this.stream);
    // A stale pointer only prunes less. A partial window missing from a stale read would prune too
    // much: backfill ids wait until the last backfill window read here shows as committed.
    const settled = !this.#lastBackfill || subtract(this.#lastBackfill, committed?.covered ?? []).length === 0;
    await this.#prune(committed, settled ? ['run', 'backfill'] : ['run']);
  }

  /** Plans a pass; returns whether it has anything to query. */
  async startPass(spec: PassSpec, ctx: ReadContext): Promise<boolean> {
    await this.#maybePrune(ctx, true);
    this.#spec = spec;
    this.#ranges = passRanges(this.#pos, spec);
    this.#at = -Infinity;
    return this.#ranges.length > 0;
  }

  /**
   * Reads the next window of the pass, yielding its chunks; returns false when the pass is over
   * (or the signal aborted, in which case nothing past the last yielded chunk is claimed).
   */
  async *readWindow(api: LogsApi, ctx: ReadContext): AsyncGenerator<StreamChunk, boolean> {
    const spec = this.#spec;
    if (!spec) throw new PipeError('PIPE_INTERNAL', 'cloudwatch: readWindow before startPass');
    const w = nextWindow(this.#ranges, this.#at, this.#size);
    if (!w) return false;
    await this.#maybePrune(ctx, false);
    this.#forgetSeen(spec, w);
    const open = openWindow(this.#pos, w, spec);
    this.#pos = open;
    const { signal } = ctx;
    const streamSets = this.#opts.streams ? chunked(this.#opts.streams, STREAM_NAMES_PER_CALL) : [undefined];
    let returned = 0;
    for (let s = 0; s < streamSets.length; s++) {
      let nextToken: string | undefined;
      do {
        const page = await api.filterLogEvents({
          group: this.group, startTime: w[0], endTime: w[1] - 1,
          ...(streamSets[s] ? { streams: streamSets[s] } : {}),
          ...(this.#opts.streamPrefix ? { streamPrefix: this.#opts.streamPrefix } : {}),
          ...(this.#opts.filterPattern ? { filterPattern: this.#opts.filterPattern } : {}),
          ...(nextToken ? { nextToken } : {}),
        }, signal);
        if (signal.aborted) return false;
        returned += page.events.length;
        nextToken = page.nextToken;
        const last = nextToken === undefined && s === streamSets.length - 1;
        const fresh: LogEvent[] = [];
        for (const e of page.events) {
          // An event outside the window is left to the window it belongs to.
          if (e.timestamp < w[0] || e.timestamp >= w[1] || this.#seen.has(e.eventId)) continue;
          this.#seen.set(e.eventId, e.timestamp);
          fresh.push(e);
        }
        if (last) {
          this.#pos = completeWindow(open, w, spec);
          if (spec.kind === 'backfill') this.#lastBackfill = w;
        }
        if (fresh.length || last) yield this.#chunk(fresh, this.#pos!, spec.kind);
      } while (nextToken !== undefined);
    }
    this.#at = w[1];
    this.#size = nextSize(this.#size, returned, this.#opts.window);
    return true;
  }

  /** Ids no later query of this process returns: below the window, and below the next pass's re-query. */
  #forgetSeen(spec: PassSpec, w: Range): void {
    let below = w[0];
    if (spec.kind === 'run') below = Math.min(below, (this.#pos?.pointer ?? spec.start) - spec.lookback);
    for (const [id, t] of this.#seen) if (t < below) this.#seen.delete(id);
  }

  #chunk(events: LogEvent[], pos: GroupPosition, kind: PassSpec['kind']): StreamChunk {
    const records: Row[] = [];
    const remember: NonNullable<StreamChunk['remember']> = [];
    const namespace = this.namespaces[kind];
    // Ids no later query can return (the window is complete and below the re-query) need no keeping.
    const keepFrom = forgetBefore(pos, this.#opts.lookback, kind) ?? -Infinity;
    let bytes = 0;
    for (const e of events) {
      records.push(eventRecord(e, this.group, this.#opts.parseJson));
      if (e.timestamp >= keepFrom) remember.push({ namespace, key: e.eventId, expiresAt: e.timestamp + 1 });
      bytes += e.message.length;
    }
    this.#sincePrune += remember.length;
    const chunk: StreamChunk = {
      ref: { identity: this.stream, uri: `cloudwatch://${this.group.name}` },
      records, firstSeq: this.#seq, bytes,
      cursor: { stream: this.stream, value: storedPosition(pos) },
      ...(remember.length ? { remember } : {}),
    };
    this.#seq += records.length;
    return chunk;
  }
}

function chunked<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
