/**
 * The `json` loader: the elements of the array at `path` (`Records` for CloudTrail), one record
 * each; without `path`, or when the document has no array there (a CloudTrail digest file), the
 * whole document is one record. A `path` that holds something else (an object, a string, null)
 * fails the artifact: PIPE_ARTIFACT_CORRUPT naming it.
 *
 * Two paths, one output. Up to `maxInMemoryBytes` the bytes are buffered and handed to
 * JSON.parse (about twice as fast as streaming). A document that grows past the limit switches to
 * the streaming decoder (json-stream.ts), which replays the buffered bytes and goes on with the
 * rest, so memory stays bounded for documents of any size. Whenever the fast path cannot give the
 * answer by itself (invalid JSON, a path that is not an array, nesting deeper than `maxDepth`, or
 * several documents in one file), the buffered bytes are replayed through the streaming decoder
 * too: its verdict is the one reported, so errors, their positions and the records emitted before
 * them are the same whichever path a document took.
 *
 * Several top-level documents in one file (`{…}{…}` or one per line) are read in order, each as
 * if alone; none is dropped. No JSON value at all (empty or whitespace) is PIPE_ARTIFACT_EMPTY.
 * A leading byte-order mark is dropped; invalid UTF-8 inside strings becomes U+FFFD. Error
 * positions: `row` counts the records emitted before the error, `byte` is the decompressed offset
 * where the problem was detected (a value is judged once its last byte is read).
 * A mapper that takes records as their own bytes (Mapper.rawKeys: cloudtrail) gets RawJsonRecords
 * instead on the in-memory path when the path is one key: the document is validated in one pass
 * over its bytes and never parsed whole (json-scan.ts); whatever that scan does not accept goes to
 * JSON.parse as above, so records, errors and positions stay the same.
 *
 * One known difference between the paths: with a key twice in one object, JSON.parse keeps the
 * last value and the streaming decoder the first (the path's array; and a too-deep value that a
 * later duplicate replaces fails only the streaming path). No real producer writes that.
 */
import type { ComponentSpec } from '../spec.js';
import { PipeError } from '../errors.js';
import { RecordBatch, type ComponentContext, type Loader, type StreamStage } from '../types.js';
import { toBuffer } from './chunks.js';
import { DEFAULT_MAX_DEPTH, valueExceedsDepth } from './json-depth.js';
import { scanJsonRecords } from './json-scan.js';
import type { JsonRecordDecoder, JsonSelectOptions } from './json-stream.js';

/**
 * The streaming decoder (and stream-json under it), imported when a document first needs it:
 * most never do, and a worker thread starts sooner without it. Once a decoder exists the module
 * is loaded, so code holding one uses `loaded` without another await per chunk.
 */
let loaded: typeof import('./json-stream.js') | undefined;
const streaming = async (): Promise<typeof import('./json-stream.js')> => (loaded ??= await import('./json-stream.js'));

export const DEFAULT_MAX_IN_MEMORY_BYTES = 32 * 1024 * 1024;

const EMPTY = Buffer.alloc(0);

/** Records of an in-memory document handed on per step. */
const RECORDS_PER_STEP = 256;

export const spec: ComponentSpec = {
  parallel: true,
  kind: 'loader',
  type: 'json',
  summary: 'JSON documents of any size: the elements of the array at `path` (streamed), or each whole document.',
  options: {
    path: {
      type: 'string',
      example: 'Records',
      description: 'Dotted keys of the array whose elements are the records. A document with no array there is one record; a path holding a non-array fails the artifact.',
    },
    maxInMemoryBytes: {
      type: 'size',
      default: DEFAULT_MAX_IN_MEMORY_BYTES,
      example: '64MiB',
      min: 1024,
      description: 'Documents up to this size are parsed in memory (faster); larger ones are streamed. Also the largest single record accepted.',
    },
    maxDepth: {
      type: 'integer',
      default: DEFAULT_MAX_DEPTH,
      example: 100,
      min: 1,
      max: 2000,
      description: 'Deepest nesting of objects and arrays accepted; a deeper document fails the artifact.',
    },
  },
};

export interface JsonOptions extends JsonSelectOptions {
  maxInMemoryBytes: number;
}

export function jsonOptions(options: Record<string, unknown>): JsonOptions {
  const { path, maxInMemoryBytes, maxDepth } = options;
  const limit = typeof maxInMemoryBytes === 'number' ? maxInMemoryBytes : DEFAULT_MAX_IN_MEMORY_BYTES;
  return {
    path: typeof path === 'string' && path !== '' ? path.split('.') : [],
    maxInMemoryBytes: limit,
    maxValueBytes: limit,
    maxDepth: typeof maxDepth === 'number' ? maxDepth : DEFAULT_MAX_DEPTH,
  };
}

/**
 * The fast path: the records of one in-memory document, or undefined when only the streaming
 * decoder can tell (see the file comment). Pure, for tests and benches.
 */
export function parseJsonDocument(bytes: Buffer, options: JsonSelectOptions): unknown[] | undefined {
  let text = bytes.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  // Judged on the parsed value, not the text (four times cheaper): see the duplicate-key note above.
  if (text.length >= 2 * (options.maxDepth + 1) && valueExceedsDepth(doc, options.maxDepth)) return undefined;
  let value = doc;
  for (const key of options.path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, key)) return [doc];
    value = (value as Record<string, unknown>)[key];
  }
  if (options.path.length === 0) return [doc];
  return Array.isArray(value) ? value : undefined;
}

/**
 * `storedBytes`: the artifact's size as stored (compressed or not), when the source knows it. A
 * document stored in more than `maxInMemoryBytes` would outgrow the fast path anyway (gzip does
 * not make data larger than it was, short of a few bytes), so it streams from its first byte instead of
 * buffering `maxInMemoryBytes` first: less memory for the largest documents. Either path gives
 * the same records and errors, so a wrong guess only costs time.
 */
export function jsonStage(options: JsonOptions, storedBytes?: number, rawKeys?: readonly string[]): StreamStage {
  return async function* json(source: AsyncIterable<unknown>, { signal }: { signal: AbortSignal }) {
    let buffered: Buffer[] = [];
    let size = 0;
    let decoder: JsonRecordDecoder | undefined = storedBytes !== undefined && storedBytes > options.maxInMemoryBytes
      ? new (await streaming()).JsonRecordDecoder(options)
      : undefined;
    const out: unknown[] = [];
    // Each decoder step's records are yielded before its error is thrown.
    async function* replay(d: JsonRecordDecoder, chunks: Buffer[]): AsyncGenerator<unknown, void, undefined> {
      for (let c = 0; c < chunks.length; c++) {
        const chunk = chunks[c]!;
        // Let each replayed chunk go once decoded: up to maxInMemoryBytes are buffered at the switch.
        chunks[c] = EMPTY;
        const failure = loaded!.attempt(() => d.write(chunk, out));
        for (let i = 0; i < out.length; i++) {
          yield out[i];
          signal.throwIfAborted();
        }
        out.length = 0;
        if (failure) throw failure;
      }
    }

    const it = source[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<unknown>;
      try {
        next = await it.next();
      } catch (err) {
        // A stage before this one failed (a truncated or corrupt gzip): deliver the records the
        // bytes so far hold, as the streaming path already has, then the cause. (A failed read of
        // the raw stream aborts the whole pipeline first: the signal says so, and nothing is left
        // to deliver to.)
        if (!decoder && size > 0 && !signal.aborted) {
          try {
            yield* (await streaming()).decodeInMemory(Buffer.concat(buffered, size), options, signal);
          } catch {
            // Invalid JSON before the cut is a consequence; the upstream error is the cause.
          }
        }
        throw err;
      }
      if (next.done) break;
      signal.throwIfAborted();
      const chunk = toBuffer(next.value);
      if (decoder) {
        yield* replay(decoder, [chunk]);
        continue;
      }
      buffered.push(chunk);
      size += chunk.length;
      if (size > options.maxInMemoryBytes) {
        // Outgrew the fast path: stream from the first byte, then go on with the rest.
        decoder = new (await streaming()).JsonRecordDecoder(options);
        const chunks = buffered;
        buffered = [];
        yield* replay(decoder, chunks);
      }
    }

    if (!decoder) {
      const bytes = buffered.length === 1 ? buffered[0]! : Buffer.concat(buffered, size);
      buffered = [];
      // Records unparsed, for a mapper that takes them so (json-scan.ts); else JSON.parse.
      const raw = rawKeys && options.path.length === 1 ? scanJsonRecords(bytes, options.path[0]!, rawKeys, options.maxDepth) : undefined;
      if (raw) {
        yield* inSteps(raw.count, (from, to) => raw.records(from, to), signal);
        return;
      }
      const records = parseJsonDocument(bytes, options);
      if (records) {
        yield* inSteps(records.length, (from, to) => records.slice(from, to), signal);
        return;
      }
      decoder = yield* (await streaming()).decodeInMemory(bytes, options, signal);
    }
    const d = decoder;
    const failure = loaded!.attempt(() => d.end(out));
    yield* out;
    out.length = 0;
    if (failure) throw failure;
    if (d.documents === 0) throw new PipeError('PIPE_ARTIFACT_EMPTY', 'no JSON value in the content', { position: { byte: d.bytes, row: 0 } });
  };
}

/**
 * An in-memory document's `count` records, RECORDS_PER_STEP per step (`take` gives them): an
 * async step per record costs more than mapping it.
 */
function* inSteps(count: number, take: (from: number, to: number) => unknown[], signal: AbortSignal): Generator<RecordBatch> {
  for (let i = 0; i < count; i += RECORDS_PER_STEP) {
    yield new RecordBatch(take(i, Math.min(count, i + RECORDS_PER_STEP)));
    signal.throwIfAborted();
  }
}

export function create(options: Record<string, unknown>, _ctx: ComponentContext): Loader {
  const opts = jsonOptions(options);
  return { output: 'records', stage: (artifact, rawKeys) => jsonStage(opts, artifact.size, rawKeys) };
}
