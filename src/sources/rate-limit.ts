/**
 * Pacing API calls: a token bucket that every call of a source draws from (retries included, so
 * a throttling storm cannot push the call rate over the bound), and the backoff with full jitter
 * that spaces out retries of a call that failed transiently.
 *
 * The bucket holds at most `burst` tokens and gains `rate` per second. With the default burst of 1
 * calls are spaced at least 1/rate apart, so any one-second interval holds at most `rate` calls.
 * Waiters are served in arrival order.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  #tokens: number;
  #last: number;
  /** Callers wait in turn: each waits for the previous one's token before its own. */
  #turn: Promise<void> = Promise.resolve();
  #now: () => number;

  constructor(rate: number, burst = 1, now: () => number = () => performance.now()) {
    if (!(rate > 0)) throw new RangeError('rate must be positive');
    this.rate = rate;
    this.burst = Math.max(1, burst);
    this.#now = now;
    this.#tokens = this.burst;
    this.#last = now();
  }

  /** Resolves when a token is taken; rejects with the signal's reason if it aborts first. */
  take(signal?: AbortSignal): Promise<void> {
    const mine = this.#turn.then(() => this.#takeOne(signal));
    // The next caller waits for this one whether it got its token or gave up.
    this.#turn = mine.catch(() => undefined);
    return mine;
  }

  async #takeOne(signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const now = this.#now();
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) * this.rate) / 1000);
      this.#last = now;
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return;
      }
      // +1 ms: timers round down to whole milliseconds and must not wake a hair too early.
      const wait = Math.ceil(((1 - this.#tokens) * 1000) / this.rate) + 1;
      await sleep(wait, undefined, signal ? { signal } : undefined);
    }
  }
}

export interface BackoffOptions {
  /** First retry waits up to this long (ms); each later one up to twice the previous bound. */
  base: number;
  /** No single wait is longer than this (ms). */
  cap: number;
}

/** "Full jitter" (AWS Architecture Blog, Exponential Backoff and Jitter): uniform in [0, min(cap, base·2^attempt)]. */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const bound = Math.min(opts.cap, opts.base * 2 ** Math.min(attempt, 30));
  return Math.round(random() * bound);
}
