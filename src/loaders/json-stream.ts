/**
 * The streaming half of the `json` loader: bytes in, records out, memory bounded by the largest
 * single record rather than the document.
 *
 * stream-json's tokenizer (jsonParser, packed tokens, JSON Streaming on so that concatenated
 * documents parse) feeds a small walker instead of pick + streamArray, because the loader needs
 * three things those do not give: the whole document as one record when it has no array at the
 * path, an error naming a path that holds something else, and a running count of records and
 * bytes for error positions. The walker, per top-level document:
 *   SEEK      assembles the document while watching for the value at `path`;
 *   ELEMENTS  inside the array at `path`: assembles and emits one element at a time;
 *   AFTER     skips the rest of the document.
 * A document that ends while still in SEEK is emitted whole (no array at the path, or no path).
 *
 * Input is fed in 4 KiB slices. The tokenizer loses the tokens of a slice it fails on and does
 * not say where in the slice it failed, so a streamed document's error position is the start of
 * that slice, and the records completed inside it are not emitted; every record before it is.
 * Bytes still in memory do better (decodeInMemory): the failing slice is re-read one byte at a
 * time, which gives the offending byte's exact offset and every record before it.
 */
import { Assembler } from 'stream-json/core/assembler.js';
import { jsonParser, type Token } from 'stream-json/core/parser.js';
import { getManyValues, isMany, none, type Many } from 'stream-chain/defs.js';
import { PipeError, type ErrorCode } from '../errors.js';

export interface JsonSelectOptions {
  /** Keys leading to the array to stream; empty: every document is one record. */
  path: readonly string[];
  maxDepth: number;
  /** Largest single value (a record, or a document being searched) held in memory. */
  maxValueBytes: number;
}

type Tokenizer = (text: string | typeof none) => Many<Token> | typeof none;

const SLICE_BYTES = 4096;
const NO_TOKENS: Token[] = [];
const enum Mode {
  Seek,
  Elements,
  After,
}
const KIND: Partial<Record<Token['name'], string>> = {
  startObject: 'an object',
  stringValue: 'a string',
  numberValue: 'a number',
  nullValue: 'null',
  trueValue: 'a boolean',
  falseValue: 'a boolean',
};

export class JsonRecordDecoder {
  readonly #parse = jsonParser({ jsonStreaming: true, streamValues: false }) as unknown as Tokenizer;
  readonly #decoder = new TextDecoder('utf-8');
  readonly #path: readonly string[];
  readonly #maxDepth: number;
  readonly #maxValueBytes: number;
  /** Decompressed bytes fed so far. */
  bytes = 0;
  /** Bytes before, and records completed before, the slice being (or last) decoded. */
  sliceStart = 0;
  sliceRecords = 0;
  /** Records emitted so far. */
  records = 0;
  /** Top-level JSON values completed so far. */
  documents = 0;
  #mode = Mode.Seek;
  #depth = 0;
  /** How many leading path keys the open objects currently match. */
  #matched = 0;
  #asm = new Assembler();
  #valueBytes = 0;

  constructor(options: JsonSelectOptions) {
    this.#path = options.path;
    this.#maxDepth = options.maxDepth;
    this.#maxValueBytes = options.maxValueBytes;
  }

  /** Appends the records `chunk` completes to `out`; throws PipeError on bad input (after appending). */
  write(chunk: Buffer, out: unknown[], sliceBytes = SLICE_BYTES): void {
    for (let i = 0; i < chunk.length; i += sliceBytes) {
      const slice = chunk.subarray(i, i + sliceBytes);
      this.sliceStart = this.bytes;
      this.sliceRecords = this.records;
      this.bytes += slice.length;
      this.#consume(this.#tokenize(this.#decoder.decode(slice, { stream: true })), out);
      const inValue = this.#mode === Mode.Seek ? this.#depth > 0 : this.#mode === Mode.Elements && !this.#asm.done;
      this.#valueBytes = inValue ? this.#valueBytes + slice.length : 0;
      if (this.#valueBytes > this.#maxValueBytes) throw this.#tooLarge();
    }
  }

  /** Ends the input: appends the last records; throws PipeError when the JSON is unfinished. */
  end(out: unknown[]): void {
    this.sliceStart = this.bytes;
    const rest = this.#decoder.decode();
    if (rest) this.#consume(this.#tokenize(rest), out);
    this.#consume(this.#tokenize(none), out);
    if (this.#depth > 0) throw this.#error('PIPE_ARTIFACT_CORRUPT', 'JSON ends inside a value (truncated)');
  }

  #tokenize(text: string | typeof none): Token[] {
    let result: Many<Token> | typeof none;
    try {
      result = this.#parse(text);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      // The tokenizer only fails at the flush because the input ended inside a value.
      const what = text === none ? 'JSON ends inside a value (truncated)' : 'invalid JSON';
      throw this.#error('PIPE_ARTIFACT_CORRUPT', `${what}: ${reason}`, err);
    }
    return isMany(result) ? getManyValues(result) : NO_TOKENS;
  }

  #consume(tokens: Token[], out: unknown[]): void {
    for (let i = 0; i < tokens.length; i++) {
      if (this.#mode === Mode.Elements) this.#element(tokens[i]!, out);
      else if (this.#mode === Mode.Seek) this.#seek(tokens[i]!, out);
      else this.#skip(tokens[i]!);
    }
  }

  #seek(t: Token, out: unknown[]): void {
    const path = this.#path;
    const atPath = path.length > 0 && this.#depth === path.length && this.#matched === path.length;
    switch (t.name) {
      case 'keyValue': {
        const frame = this.#depth - 1;
        if (frame < path.length) {
          if (this.#matched > frame) this.#matched = frame;
          if (this.#matched === frame && t.value === path[frame]) this.#matched = frame + 1;
        }
        break;
      }
      case 'startArray':
        if (atPath) {
          // The array at the path: stream its elements; the document around it is dropped.
          this.#mode = Mode.Elements;
          this.#depth++;
          this.#asm = new Assembler();
          this.#valueBytes = 0;
          return;
        }
        this.#open();
        break;
      case 'startObject':
        if (atPath) throw this.#notArray(t.name);
        this.#open();
        break;
      case 'endObject':
      case 'endArray':
        this.#depth--;
        if (this.#matched > this.#depth) this.#matched = this.#depth;
        break;
      default:
        if (atPath) throw this.#notArray(t.name);
    }
    this.#asm.consume(t);
    if (this.#depth === 0) {
      this.#emit(this.#asm.current, out);
      this.#documentDone();
    }
  }

  #element(t: Token, out: unknown[]): void {
    const asm = this.#asm;
    if (asm.done && t.name === 'endArray') {
      this.#depth--;
      this.#mode = Mode.After;
      return;
    }
    asm.consume(t);
    if (t.name === 'startObject' || t.name === 'startArray') this.#open();
    else if (t.name === 'endObject' || t.name === 'endArray') this.#depth--;
    if (asm.done) this.#emit(asm.current, out);
  }

  #skip(t: Token): void {
    if (t.name === 'startObject' || t.name === 'startArray') this.#open();
    else if ((t.name === 'endObject' || t.name === 'endArray') && --this.#depth === 0) this.#documentDone();
  }

  #open(): void {
    if (++this.#depth > this.#maxDepth) throw this.#error('PIPE_ARTIFACT_CORRUPT', `JSON nested deeper than maxDepth (${this.#maxDepth})`);
  }

  #emit(value: unknown, out: unknown[]): void {
    out.push(value);
    this.records++;
    this.#valueBytes = 0;
  }

  #documentDone(): void {
    this.documents++;
    this.#mode = Mode.Seek;
    this.#matched = 0;
    this.#asm = new Assembler();
  }

  #notArray(name: Token['name']): PipeError {
    return this.#error('PIPE_ARTIFACT_CORRUPT', `path '${this.#path.join('.')}' holds ${KIND[name] ?? name}, not an array`);
  }

  #tooLarge(): PipeError {
    const limit = `maxInMemoryBytes (${this.#maxValueBytes})`;
    if (this.#mode === Mode.Elements) return this.#error('PIPE_ARTIFACT_CORRUPT', `record ${this.records} is larger than ${limit}`);
    return this.#error(
      'PIPE_ARTIFACT_CORRUPT',
      this.#path.length
        ? `JSON document grew past ${limit} with no array at path '${this.#path.join('.')}' so far`
        : `JSON document is larger than ${limit}; set \`path\` to stream the array it holds`,
    );
  }

  #error(code: ErrorCode, message: string, cause?: unknown): PipeError {
    return new PipeError(code, message, { cause, position: { byte: this.sliceStart, row: this.records } });
  }
}

/** Bytes handed to the decoder at once when replaying memory (a multiple of SLICE_BYTES). */
const PIECE_BYTES = 16 * SLICE_BYTES;

/**
 * Decodes bytes held in memory, yielding records, and returns the decoder (not yet ended). When
 * a slice fails, a fresh decoder re-reads everything before that slice (records already emitted
 * are dropped) and then the failing slice one byte at a time: the error it then raises carries
 * the offending byte's offset, and the records the slice completed before it are emitted too.
 */
export async function* decodeInMemory(
  bytes: Buffer,
  options: JsonSelectOptions,
  signal: AbortSignal,
): AsyncGenerator<unknown, JsonRecordDecoder, undefined> {
  const out: unknown[] = [];
  const decoder = new JsonRecordDecoder(options);
  let failure: unknown;
  for (let i = 0; i < bytes.length && failure === undefined; i += PIECE_BYTES) {
    failure = attempt(() => decoder.write(bytes.subarray(i, i + PIECE_BYTES), out));
    for (let k = 0; k < out.length; k++) {
      yield out[k];
      signal.throwIfAborted();
    }
    out.length = 0;
  }
  if (failure === undefined) return decoder;
  if (!(failure instanceof PipeError)) throw failure;

  const exact = new JsonRecordDecoder(options);
  const start = decoder.sliceStart;
  for (let i = 0; i < start; i += PIECE_BYTES) {
    exact.write(bytes.subarray(i, Math.min(i + PIECE_BYTES, start)), out);
    out.length = 0;
  }
  const precise = attempt(() => exact.write(bytes.subarray(start, start + SLICE_BYTES), out, 1));
  const seen = decoder.records - decoder.sliceRecords;
  for (let k = seen; k < out.length; k++) yield out[k];
  throw precise ?? failure;
}

/** Runs `fn`, returning what it threw (undefined when nothing), so output can be flushed first. */
export function attempt(fn: () => void): unknown {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err;
  }
}
