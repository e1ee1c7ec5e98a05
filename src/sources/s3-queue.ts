/**
 * Queue mode of the `s3` source: objects named by S3 event notifications received from SQS.
 *
 * Each receive asks for up to `maxMessages` messages and makes them invisible for
 * `visibilityTimeout`. A message's objects become artifacts exactly as a listing makes them (same
 * identity, same GET), so an object notified twice, or also listed, is collected once. Every
 * artifact is told how it settled: the message is deleted once every object it names is done or
 * failed; while any is unsettled its visibility is extended every third of the timeout. A message
 * left because another worker holds an object (`elsewhere`) is no longer extended; one left
 * because the run stopped is made visible again at once. A message that is not a notification is
 * recorded as skipped and left in the queue, for its redrive policy to move to a dead-letter queue.
 *
 * Backpressure: the engine pulls artifacts; a receive happens only when it asks for more, and not
 * while `cap` objects are still unsettled, so received-but-unread messages stay bounded. On a stop
 * the long poll in flight is cut, unless messages are still in flight (see #abandon).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { PipeError } from '../errors.js';
import type { Artifact, ArtifactOutcome, ListContext, Logger } from '../types.js';
import { transientFault } from './cloudwatch-api.js';
import { backoffDelay } from './rate-limit.js';
import { objectError, type ListedObject } from './s3-client.js';
import { queueError, type QueueDeps, type QueueMessage } from './s3-queue-client.js';
import { parseNotification, type NotifiedObject } from './s3-notify.js';

export interface ReceiverOptions {
  bucket: string;
  /** ms */
  visibilityTimeout: number;
  maxMessages: number;
  /** Unsettled objects at most before receiving more. */
  cap: number;
  /** include/exclude (and no console "folder"), as for a listed key. */
  wanted(key: string, size: number | undefined): boolean;
  /** The listing's artifact factory: same identity, same GET. */
  artifact(obj: ListedObject): Artifact;
  log: Logger;
}

type SlotOutcome = ArtifactOutcome | 'leave';

interface Tracked {
  id: string;
  receipt: string;
  /** Objects not settled yet. */
  pending: number;
  /** Not to be deleted nor extended any more. */
  left: boolean;
  extending: boolean;
}

export interface QueueCounts {
  messages: number;
  objects: number;
  testEvents: number;
  nonCreate: number;
  unparseable: number;
  otherBucket: number;
  filtered: number;
  deleted: number;
}

/** Receives notifications and hands out their objects as artifacts. */
export class QueueReceiver {
  readonly counts: QueueCounts = { messages: 0, objects: 0, testEvents: 0, nonCreate: 0, unparseable: 0, otherBucket: 0, filtered: 0, deleted: 0 };
  #o: ReceiverOptions;
  #deps: QueueDeps;
  #live = new Map<string, Tracked>();
  #unsettled = 0;
  /** Messages recorded as unparseable in this run, and messages left because the run stopped. */
  #recorded = new Set<string>();
  #stopped = new Set<string>();
  #otherBuckets = new Set<string>();
  #acks = new Set<Promise<void>>();
  #wake: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #open = false;
  /** The receive left running when the run stopped with messages in flight. */
  #lingering: AbortController | undefined;

  constructor(o: ReceiverOptions, deps: QueueDeps) {
    this.#o = o;
    this.#deps = deps;
  }

  get #vtSeconds(): number {
    return Math.max(1, Math.ceil(this.#o.visibilityTimeout / 1000));
  }

  async *receive(ctx: ListContext): AsyncGenerator<Artifact> {
    const q = this.#deps.queue;
    this.#open = true;
    this.#timer ??= setInterval(() => this.#extendAll(), Math.max(100, Math.floor(this.#o.visibilityTimeout / 3)));
    this.#timer.unref();
    let failures = 0;
    /** Received and not yet handed to the engine: left for others if the engine stops pulling. */
    let unread: QueueMessage[] = [];
    let unyielded: Artifact[] = [];
    try {
      while (!ctx.signal.aborted) {
        while (this.#unsettled >= this.#o.cap && !ctx.signal.aborted) await this.#settled(ctx.signal);
        if (ctx.signal.aborted) break;
        try {
          const poll = new AbortController();
          const receiving = q.receive({ max: this.#o.maxMessages, waitSeconds: ctx.once ? 1 : 20, visibilitySeconds: this.#vtSeconds }, poll.signal);
          const got = await untilAborted(receiving, ctx.signal);
          if (!got) {
            this.#abandon(receiving, poll);
            break;
          }
          unread = got;
          failures = 0;
        } catch (err) {
          if (ctx.signal.aborted) break;
          const e = queueError(err, q.url, 'ReceiveMessage');
          // A receiver that runs until stopped outlives a bad minute of SQS (after the SDK's own retries).
          if (ctx.once || !transientFault(err)) throw e;
          const wait = backoffDelay(failures++, { base: 1000, cap: 60_000 });
          ctx.log.warn(`${e.message}; receiving again in ${Math.round(wait / 1000)} s`, { code: e.code });
          await sleep(wait, undefined, { signal: ctx.signal }).catch(() => undefined);
          continue;
        }
        let fresh = 0;
        while (unread.length) {
          const m = unread.shift()!;
          // Back again within this run: an unparseable message already recorded, or one left when
          // stopped (a dry run), which --once, about to end, makes visible again rather than hold.
          if (this.#recorded.has(m.id)) continue;
          if (this.#stopped.has(m.id)) {
            if (ctx.once) this.#ack(this.#call('ChangeMessageVisibility', () => q.setVisibility(m.receipt, 0)));
            continue;
          }
          fresh++;
          unyielded = await this.#accept(m, ctx);
          while (unyielded.length) {
            yield unyielded[0]!;
            unyielded.shift();
          }
        }
        // --once: done when the queue has nothing new and nothing received is still in flight.
        if (fresh === 0 && ctx.once && this.#unsettled === 0) break;
      }
    } finally {
      // The engine broke off: what it did not take in is stopped (a no-op for what it did), and
      // messages not even looked at are made visible again.
      for (const a of unyielded) a.settle?.('stopped');
      for (const m of unread) this.#ack(this.#call('ChangeMessageVisibility', () => q.setVisibility(m.receipt, 0)));
      this.#open = false;
      if (!ctx.signal.aborted) await Promise.allSettled([...this.#acks]);
      this.#stopTimerIfIdle();
      const c = this.counts;
      ctx.log.info(`queue ${q.url}: ${c.messages} messages, ${c.objects} objects, ${c.testEvents} test events ignored, `
        + `${c.nonCreate} non-create events ignored, ${c.unparseable} unparseable (left in the queue)`
        + `${c.otherBucket ? `, ${c.otherBucket} objects of other buckets ignored` : ''}${c.filtered ? `, ${c.filtered} excluded by include/exclude` : ''}`
        + `, ${c.deleted} deleted`, { event: 'queue_summary', ...c });
    }
  }

  /**
   * A long poll cut short server-side can still take messages (SQS answers the closed connection):
   * they would stay invisible for the whole timeout, and so would the messages this run makes
   * visible again as it stops. While messages are in flight the poll is let run instead, and
   * whatever it brings is made visible at once; it is cut once everything has settled.
   */
  #abandon(receiving: Promise<QueueMessage[]>, poll: AbortController): void {
    const q = this.#deps.queue;
    if (this.#live.size === 0) {
      poll.abort();
      receiving.catch(() => undefined);
      return;
    }
    this.#lingering = poll;
    this.#ack(receiving.then((got) => {
      for (const m of got) this.#ack(this.#call('ChangeMessageVisibility', () => q.setVisibility(m.receipt, 0)));
    }, () => undefined).finally(() => {
      if (this.#lingering === poll) this.#lingering = undefined;
    }));
  }

  /** Parses a message and makes its objects' artifacts; a message with nothing to collect is deleted. */
  async #accept(m: QueueMessage, ctx: ListContext): Promise<Artifact[]> {
    const q = this.#deps.queue;
    this.counts.messages++;
    const already = this.#live.get(m.id);
    if (already) {
      // Received again while its objects are in flight (its visibility lapsed): the new receipt is the valid one.
      already.receipt = m.receipt;
      return [];
    }
    const parsed = parseNotification(m.body);
    if ('error' in parsed) {
      this.counts.unparseable++;
      this.#recorded.add(m.id);
      const uri = `${q.url}#${m.id}`;
      ctx.log.warn(`${uri}: not an S3 event notification, left in the queue for its redrive policy (dead-letter queue): ${parsed.error}`, { code: 'PIPE_SKIPPED' });
      await ctx.recordSkipped({ identity: `sqs:${m.id}`, uri }, parsed.error);
      return [];
    }
    this.counts.testEvents += parsed.testEvents;
    this.counts.nonCreate += parsed.otherEvents.length;
    const wanted: NotifiedObject[] = [];
    for (const o of parsed.objects) {
      if (o.bucket !== this.#o.bucket) {
        this.counts.otherBucket++;
        if (!this.#otherBuckets.has(o.bucket)) {
          this.#otherBuckets.add(o.bucket);
          ctx.log.warn(`queue ${q.url}: notifications of bucket ${o.bucket} are ignored (this source collects bucket ${this.#o.bucket})`);
        }
      } else if (!this.#o.wanted(o.key, o.size)) {
        this.counts.filtered++;
      } else {
        wanted.push(o);
      }
    }
    const t: Tracked = { id: m.id, receipt: m.receipt, pending: wanted.length, left: false, extending: false };
    if (wanted.length === 0) {
      this.#ack(this.#delete(t));
      return [];
    }
    this.#live.set(m.id, t);
    this.#unsettled += wanted.length;
    const artifacts: Artifact[] = [];
    for (const o of wanted) {
      const listed = await this.#describe(o, t, ctx);
      if (!listed) continue;
      const artifact = this.#o.artifact(listed);
      let settled = false;
      // Not enumerable: the artifact's plain fields are what is posted to worker threads.
      Object.defineProperty(artifact, 'settle', {
        enumerable: false,
        value: (outcome: ArtifactOutcome) => {
          if (settled) return;
          settled = true;
          this.#settle(t, outcome);
        },
      });
      this.counts.objects++;
      artifacts.push(artifact);
    }
    return artifacts;
  }

  /** The object as a listing would show it; looked up when the notification lacks its ETag or size. */
  async #describe(o: NotifiedObject, t: Tracked, ctx: ListContext): Promise<ListedObject | undefined> {
    if (o.etag !== undefined && o.size !== undefined) {
      return { key: o.key, etag: `"${o.etag}"`, size: o.size, lastModified: o.time ?? new Date() };
    }
    try {
      const h = await this.#deps.head(o.key, ctx.signal);
      if (h) return { key: o.key, etag: h.etag, size: h.size, lastModified: h.lastModified };
      ctx.log.info(`s3://${this.#o.bucket}/${o.key}: deleted before it could be read; nothing to collect`);
      this.#settle(t, 'done');
    } catch (err) {
      // Not identifiable now (access, network): the message stays and comes back after its visibility timeout.
      if (!ctx.signal.aborted) ctx.log.warn(`${objectError(err, `s3://${this.#o.bucket}/${o.key}`).message}; its message is left in the queue`);
      this.#settle(t, 'leave');
    }
    return undefined;
  }

  #settle(t: Tracked, outcome: SlotOutcome): void {
    t.pending--;
    this.#unsettled--;
    if (outcome === 'elsewhere' || outcome === 'leave') {
      t.left = true;
    } else if (outcome === 'stopped' && !t.left) {
      t.left = true;
      this.#stopped.add(t.id);
      // Back at once for whoever receives next, rather than after the visibility timeout.
      this.#ack(this.#call('ChangeMessageVisibility', () => this.#deps.queue.setVisibility(t.receipt, 0)));
    }
    if (t.pending === 0) {
      this.#live.delete(t.id);
      if (!t.left) this.#ack(this.#delete(t));
    }
    this.#wake?.();
    this.#stopTimerIfIdle();
  }

  async #delete(t: Tracked): Promise<void> {
    await this.#call('DeleteMessage', () => this.#deps.queue.delete(t.receipt));
    this.counts.deleted++;
  }

  #extendAll(): void {
    for (const t of this.#live.values()) {
      if (t.left || t.extending) continue;
      t.extending = true;
      this.#ack(this.#call('ChangeMessageVisibility', () => this.#deps.queue.setVisibility(t.receipt, this.#vtSeconds))
        .catch((err: PipeError) => {
          // The receipt expired, so the message may be received again (its objects are still
          // collected once); other failures are tried again at the next tick.
          const name = (err.cause as { name?: string } | undefined)?.name ?? '';
          if (/ReceiptHandleIsInvalid|InvalidParameterValue|MessageNotInflight/.test(name)) t.left = true;
        })
        .finally(() => { t.extending = false; }));
    }
  }

  /** Runs an acknowledgement call; failures are logged (the message comes back, and is settled then). */
  async #call(name: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      const e = queueError(err, this.#deps.queue.url, name);
      this.#o.log.warn(`${e.message}; the message will be received again`, { code: e.code });
      throw e;
    }
  }

  #ack(p: Promise<void>): void {
    const tracked = p.catch(() => undefined);
    this.#acks.add(tracked);
    void tracked.finally(() => this.#acks.delete(tracked));
  }

  #settled(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #stopTimerIfIdle(): void {
    if (this.#open || this.#live.size > 0) return;
    if (this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    // Give a lingering poll a moment to bring back what was just made visible, then end it.
    const poll = this.#lingering;
    if (poll) setTimeout(() => poll.abort(), 500);
  }
}

/** The result of `p`, or undefined if `signal` aborts first (`p` is left running). */
async function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return undefined;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([p, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort!);
  }
}
