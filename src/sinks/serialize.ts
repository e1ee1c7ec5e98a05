/**
 * Rows to JSON lines, grouped by partition. Runs in worker threads when the engine uses them, so
 * JSON.stringify (the single largest cost of a pipeline) is spread over every core.
 *
 * Each row's JSON is encoded as UTF-8 straight into a growing buffer, row by row: building one
 * long string first and encoding it afterwards costs a flattening copy plus two passes over it
 * (measuring, then writing), which made encoding as expensive as half of JSON.stringify itself.
 */
import type { CollectPlan } from '../engine/collect.js';
import type { Batch, LineSink, Row, RowErrorRecord, RowSerializer, SerializedPart } from '../types.js';

/**
 * A row's partition from its `_time` `t` ('' for a row whose `_time` is not a string):
 * `dt=YYYY-MM-DD` (day) or `dt=YYYY-MM-DD/hour=HH` (hour). `_time` may be carried as written in
 * the source (`../../etc`, a NUL, a long string); anything that is not a date (and hour) of that
 * shape goes to `dt=unknown`, so no row can name a path or key outside a sink, whichever sink
 * writes it. Only the first 13 characters are judged (RowWriter relies on that).
 */
export function partitionOfTime(t: string, mode: RowSerializer['partition']): string {
  if (mode === 'none') return '';
  if (t.length < 13) return 'dt=unknown';
  const day = t.slice(0, 10);
  if (!DAY.test(day)) return 'dt=unknown';
  if (mode === 'day') return `dt=${day}`;
  const hour = t.slice(11, 13);
  return HOUR.test(hour) ? `dt=${day}/hour=${hour}` : 'dt=unknown';
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const HOUR = /^\d{2}$/;

const NEWLINE = 0x0a;
const MIN_CAPACITY = 64 * 1024;

/**
 * JSON lines appended as UTF-8. The buffer owns its ArrayBuffer (never a slice of Buffer's shared
 * pool), so a worker can move it to the main thread instead of copying it.
 */
class LineBytes {
  #buf: Buffer;
  #used = 0;
  #buffers: BufferSource | undefined;
  rows = 0;

  constructor(capacity: number, buffers?: BufferSource) {
    this.#buffers = buffers;
    this.#buf = this.#alloc(Math.max(MIN_CAPACITY, capacity));
  }

  #alloc(size: number): Buffer {
    return this.#buffers?.take(size) ?? Buffer.allocUnsafeSlow(size);
  }

  #room(need: number): void {
    if (need <= this.#buf.length) return;
    const bigger = this.#alloc(Math.max(need, this.#buf.length * 2));
    this.#buf.copy(bigger, 0, 0, this.#used);
    this.#buffers?.give(this.#buf.buffer as ArrayBuffer);
    this.#buf = bigger;
  }

  /** Appends one line; returns its bytes. */
  add(json: string): number {
    // A UTF-16 code unit never takes more than 3 bytes of UTF-8: room for that is room enough.
    this.#room(this.#used + json.length * 3 + 1);
    const n = this.#buf.write(json, this.#used);
    this.#used += n;
    this.#buf[this.#used++] = NEWLINE;
    this.rows++;
    return n + 1;
  }

  /** Appends one line given as bytes followed by a string; returns its bytes. */
  addCopy(bytes: Uint8Array, start: number, end: number, tail: string): number {
    const from = this.#used;
    this.#room(from + (end - start) + tail.length * 3 + 1);
    this.#buf.set(bytes.subarray(start, end), from);
    this.#used += end - start;
    this.#used += this.#buf.write(tail, this.#used);
    this.#buf[this.#used++] = NEWLINE;
    this.rows++;
    return this.#used - from;
  }

  /**
   * The lines. A buffer mostly empty (a batch of a few rows) is copied to one of the exact size:
   * the sink holds these until it writes, and a few kilobytes of rows must not keep 64 KiB each.
   */
  get bytes(): Uint8Array {
    if (this.#used >= this.#buf.length >> 1) return this.#buf.subarray(0, this.#used);
    const exact = Buffer.allocUnsafeSlow(this.#used);
    this.#buf.copy(exact, 0, 0, this.#used);
    this.#buffers?.give(this.#buf.buffer as ArrayBuffer);
    return exact;
  }
}

/**
 * Buffers written out and given back (a worker's, returned by the main thread once the sink wrote
 * them): reused before new ones are allocated. A few, of bounded size, so memory stays bounded.
 */
export class BufferSource {
  #free: ArrayBuffer[] = [];

  constructor(readonly maxCount = 8, readonly maxBytes = 8 * 1024 * 1024) {}

  /** A buffer of at least `size` bytes from those given back, or undefined. */
  take(size: number): Buffer | undefined {
    const i = this.#free.findIndex((b) => b.byteLength >= size);
    if (i < 0) return undefined;
    const [b] = this.#free.splice(i, 1);
    return Buffer.from(b!);
  }

  give(buffer: ArrayBuffer): void {
    if (buffer.byteLength > this.maxBytes || buffer.byteLength === 0) return;
    if (this.#free.length >= this.maxCount) this.#free.shift();
    this.#free.push(buffer);
  }

  get size(): number {
    return this.#free.length;
  }
}

/** Bytes the last batch needed: the next one starts with room for about as much. */
let lastSize = MIN_CAPACITY;

/**
 * Rows serialized one at a time, as they are mapped, into UTF-8 JSON lines per partition; `take`
 * hands over what a batch gathered. A worker writes each row the moment its mapper returns it, so
 * the row object dies young: holding a loader batch of thousands of rows until the batch is full
 * kept them alive through the young generation's collections, whose copying made up a tenth of a
 * VPC Flow run. A row JSON.stringify cannot handle (a cycle, nesting deeper than the stack) is
 * returned as a row error instead of failing its artifact.
 */
export class RowWriter implements LineSink {
  #parts = new Map<string, LineBytes>();
  /** The last valid time's day (or day and hour) and its part. */
  #lastPrefix = '';
  #lastPart: LineBytes | undefined;
  /** Bytes written since the last `take`. */
  bytes = 0;

  constructor(readonly mode: RowSerializer['partition'], readonly buffers?: BufferSource) {}

  /** Writes a row; returns the row error instead when it cannot be written as JSON. */
  add(row: Row): RowErrorRecord | undefined {
    let json: string;
    try {
      json = JSON.stringify(row);
    } catch (err) {
      return {
        artifact: '', uri: String(row._source ?? ''), position: {}, code: 'PIPE_ROW_INVALID',
        message: `row ${String(row._id ?? '')} cannot be written as JSON: ${(err as Error).message}`,
      };
    }
    this.bytes += this.#partOfTime(typeof row._time === 'string' ? row._time : '').add(json);
    return undefined;
  }

  /** A row a mapper wrote as JSON itself (ArtifactMapper.write). */
  line(json: string, time: string): void {
    this.bytes += this.#partOfTime(time).add(json);
  }

  copy(bytes: Uint8Array, start: number, end: number, tail: string, time: string): void {
    this.bytes += this.#partOfTime(time).addCopy(bytes, start, end, tail);
  }

  /**
   * The part for a row whose `_time` is `t`. The rows of one artifact mostly share their day: a
   * time that begins as the last valid one did is in the same partition (partitionOfTime judges
   * only its first 13 characters), without slicing and testing it again (about 110 ns a row).
   */
  #partOfTime(t: string): LineBytes {
    if (this.#lastPart !== undefined && t.length >= 13 && t.startsWith(this.#lastPrefix)) return this.#lastPart;
    const partition = partitionOfTime(t, this.mode);
    const part = this.#part(partition);
    if (partition !== 'dt=unknown') {
      this.#lastPrefix = t.slice(0, this.mode === 'hour' ? 13 : this.mode === 'day' ? 10 : 0);
      this.#lastPart = part;
    }
    return part;
  }

  #part(partition: string): LineBytes {
    let part = this.#parts.get(partition);
    if (!part) {
      part = new LineBytes(this.#parts.size === 0 ? lastSize + (lastSize >> 3) : 0, this.buffers);
      this.#parts.set(partition, part);
    }
    return part;
  }

  /** The lines written since the last `take`, per partition; the writer starts empty again. */
  take(): SerializedPart[] {
    const out: SerializedPart[] = [];
    let total = 0;
    for (const [partition, part] of this.#parts) {
      const text = part.bytes;
      total += text.byteLength;
      out.push({ partition, text, rows: part.rows });
    }
    this.#parts.clear();
    this.#lastPart = undefined;
    this.bytes = 0;
    if (total > 0) lastSize = Math.min(total, 64 * 1024 * 1024);
    return out;
  }
}

/**
 * The plan with rows written as JSON the moment they are mapped (CollectPlan.rowWriter), in the
 * sink's partitions: what a pipeline's plan gets wherever it decodes (main thread or worker).
 */
export function writingRows(plan: CollectPlan, mode: RowSerializer['partition'], buffers?: BufferSource): CollectPlan {
  return { ...plan, rowWriter: () => new RowWriter(mode, buffers) };
}

/** Serializes rows into UTF-8 JSON lines per partition (RowWriter over a whole array). */
export function serializeRows(rows: Row[], mode: RowSerializer['partition'], buffers?: BufferSource): { parts: SerializedPart[]; errors: RowErrorRecord[] } {
  const writer = new RowWriter(mode, buffers);
  const errors: RowErrorRecord[] = [];
  for (const row of rows) {
    const e = writer.add(row);
    if (e) errors.push(e);
  }
  return { parts: writer.take(), errors };
}

/**
 * What a chunk-writing sink appends for one batch: its rows as JSON lines per partition (already
 * serialized by a worker, or serialized here), and its row errors (the batch's own and rows that
 * could not be serialized) as dead-letter lines.
 */
export function batchParts(batch: Batch, mode: RowSerializer['partition']): { parts: SerializedPart[]; rowErrors: RowErrorRecord[]; errorsText: string } {
  let parts = batch.serialized;
  let rowErrors = batch.rowErrors;
  if (!parts) {
    const s = serializeRows(batch.rows, mode);
    parts = s.parts;
    if (s.errors.length) rowErrors = [...rowErrors, ...s.errors.map((e) => ({ ...e, artifact: batch.artifact.identity }))];
  }
  let errorsText = '';
  if (rowErrors.length) {
    const now = new Date().toISOString();
    for (const e of rowErrors) errorsText += JSON.stringify({ ...e, _time: now }) + '\n';
  }
  return { parts, rowErrors, errorsText };
}
