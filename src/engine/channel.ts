/**
 * A bounded async queue between the artifact readers and the sink. `push` waits while the queue
 * is full, which is how a slow sink slows every download: backpressure from end to end.
 */
export class Channel<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #capacity: number;
  #closed = false;
  #error: Error | undefined;
  #pushers: Array<() => void> = [];
  #puller: (() => void) | undefined;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#items.length;
  }

  async push(item: T): Promise<void> {
    while (this.#items.length >= this.#capacity && !this.#closed) {
      await new Promise<void>((resolve) => this.#pushers.push(resolve));
    }
    if (this.#closed) throw this.#error ?? new Error('channel closed');
    this.#items.push(item);
    this.#wakePuller();
  }

  /** No more items: readers drain what is queued. With an error, waiting pushers fail. */
  close(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = error;
    for (const p of this.#pushers.splice(0)) p();
    this.#wakePuller();
  }

  #wakePuller(): void {
    const p = this.#puller;
    this.#puller = undefined;
    p?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.#items.length) {
        yield this.#items.shift()!;
        this.#pushers.shift()?.();
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => (this.#puller = resolve));
    }
  }
}
