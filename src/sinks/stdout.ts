/**
 * The stdout sink: rows as JSON lines on standard output. A pipe cannot take back what it wrote,
 * so delivery here is at-least-once: positions are committed right after the rows are flushed to
 * the pipe, and a crash between the two repeats at most the rows since the last commit.
 */
import type { Writable } from 'node:stream';
import type { ComponentSpec } from '../spec.js';
import { batchRows, type Batch, type RowSerializer, type Sink, type SinkContext } from '../types.js';
import { serializeRows } from './serialize.js';

export const spec: ComponentSpec = {
  kind: 'sink',
  type: 'stdout',
  summary: 'JSON lines on standard output (at-least-once: a pipe cannot be rolled back).',
  options: {
    flushInterval: { type: 'duration', default: 1000, min: 10, example: '1s', description: 'Commit positions at least this often.' },
    maxRows: { type: 'integer', default: 10_000, min: 1, description: 'Commit positions after this many rows.' },
  },
};

export class StdoutSink implements Sink {
  #out: Writable;
  #ctx: SinkContext | undefined;
  #batches: Batch[] = [];
  #rows = 0;
  #maxRows: number;
  #flushInterval: number;
  #last = Date.now();

  constructor(out: Writable, opts: { maxRows: number; flushInterval: number }) {
    this.#out = out;
    this.#maxRows = opts.maxRows;
    this.#flushInterval = opts.flushInterval;
  }

  readonly serializer: RowSerializer = { format: 'jsonl', partition: 'none' };

  async open(ctx: SinkContext): Promise<void> {
    this.#ctx = ctx;
  }

  async write(batch: Batch): Promise<void> {
    const parts = batch.serialized ?? serializeRows(batch.rows, 'none').parts;
    for (const p of parts) {
      if (!this.#out.write(p.text)) await new Promise<void>((res) => this.#out.once('drain', res));
    }
    for (const e of batch.rowErrors) this.#ctx!.log.warn(`row error: ${e.message}`, { uri: e.uri, position: e.position, code: e.code });
    this.#batches.push({ ...batch, rows: [], serialized: undefined, rowCount: batchRows(batch) });
    this.#rows += batchRows(batch);
    if (this.#rows >= this.#maxRows || Date.now() - this.#last >= this.#flushInterval) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.#batches.length) return;
    const batches = this.#batches;
    this.#batches = [];
    this.#rows = 0;
    this.#last = Date.now();
    await this.#ctx!.commit([], batches);
  }

  async close(): Promise<void> {}
}

export function create(options: Record<string, unknown>): Sink {
  return new StdoutSink(process.stdout, options as { maxRows: number; flushInterval: number });
}
