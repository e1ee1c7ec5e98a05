/**
 * Records of a JSON document handed on as their own bytes, unparsed: what the json loader yields
 * for a mapper whose row is the record as delivered plus a few fields (cloudtrail, Mapper.rawKeys).
 * The scan that finds them, and what "canonical" means, is json-scan.ts. A record that is not
 * canonical is parsed on its own (RawJsonRecord.value) and mapped as usual.
 */

import { grow } from './json-bytes.js';

/** One record: its bytes in `doc`, unparsed. */
export class RawJsonRecord {
  constructor(readonly doc: RawJsonDocument, readonly index: number) {}

  get start(): number {
    return this.doc.spans[this.index * this.doc.stride]!;
  }

  get end(): number {
    return this.doc.spans[this.index * this.doc.stride + 1]!;
  }

  /** Whether the bytes are exactly what JSON.stringify writes for the parsed record. */
  get canonical(): boolean {
    return this.doc.spans[this.index * this.doc.stride + 2] === 1;
  }

  /** Where the value of wanted key `k` starts (-1: the record is not an object or lacks it). */
  fieldStart(k: number): number {
    return this.doc.spans[this.index * this.doc.stride + 3 + 2 * k]!;
  }

  fieldEnd(k: number): number {
    return this.doc.spans[this.index * this.doc.stride + 4 + 2 * k]!;
  }

  /** The record parsed, as JSON.parse of the whole document would have given it. */
  value(): unknown {
    return JSON.parse(this.doc.bytes.toString('utf8', this.start, this.end));
  }
}

/** A scanned document: its bytes and, per record, start, end, canonical flag, then wanted-key spans. */
export class RawJsonDocument {
  readonly stride: number;
  spans: Int32Array;
  count = 0;

  /** `room`: records to make room for at first. */
  constructor(readonly bytes: Buffer, keys: number, room = 256) {
    this.stride = 3 + 2 * keys;
    this.spans = new Int32Array(this.stride * room);
  }

  /** Records `from` to `to` (excluded): all of them by default. */
  records(from = 0, to = this.count): RawJsonRecord[] {
    const out = new Array<RawJsonRecord>(to - from);
    for (let i = from; i < to; i++) out[i - from] = new RawJsonRecord(this, i);
    return out;
  }

  /** Room for one more record; returns its first slot, all wanted-key spans set to -1. */
  push(): number {
    const at = this.count * this.stride;
    if (at + this.stride > this.spans.length) this.spans = grow(this.spans);
    this.spans.fill(-1, at + 3, at + this.stride);
    this.count++;
    return at;
  }
}
