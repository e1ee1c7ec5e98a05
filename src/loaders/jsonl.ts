/**
 * The `jsonl` loader: one JSON value per line (split exactly as `lines` splits).
 *
 * - A line that is not JSON is a PIPE_ROW_INVALID RowError in its place (first 1 KiB as `raw`);
 *   an over-long line is the splitter's PIPE_LINE_TOO_LONG RowError. Reading goes on.
 * - Blank lines (empty or whitespace only) are skipped and not counted: they yield nothing. The
 *   numbering stays deterministic (the same bytes give the same records), so a resumed run skips
 *   exactly the records the first run committed.
 * - Any JSON value is a record, objects or not; what a non-object becomes is the mapper's call.
 * - A value nested deeper than `maxDepth` is a PIPE_ROW_INVALID RowError: V8 parses any depth,
 *   but JSON.stringify and recursive mappers overflow the stack a few thousand levels down.
 */
import type { ComponentSpec } from '../spec.js';
import { RecordBatch, RowError, type ComponentContext, type Loader, type StreamStage } from '../types.js';
import { toBuffer } from './chunks.js';
import { DEFAULT_MAX_DEPTH, exceedsDepth } from './json-depth.js';
import { LineSplitter, type LineItem } from './line-splitter.js';
import { linesOptions, spec as linesSpec, type LinesOptions } from './lines.js';

const RAW_PREVIEW_CHARS = 1024;

export const spec: ComponentSpec = {
  parallel: true,
  kind: 'loader',
  type: 'jsonl',
  summary: 'One JSON value per line; a line that is not JSON becomes a row error in its place. Blank lines are skipped.',
  options: {
    maxLineBytes: linesSpec.options['maxLineBytes']!,
    maxDepth: {
      type: 'integer',
      default: DEFAULT_MAX_DEPTH,
      example: 100,
      min: 1,
      max: 2000,
      description: 'Deepest nesting of objects and arrays accepted in one line; a deeper value is a PIPE_ROW_INVALID row error.',
    },
  },
};

export interface JsonlOptions extends LinesOptions {
  maxDepth: number;
}

/** One line → its JSON value, a RowError, or undefined for a blank line. Pure, for tests and benches. */
export function parseJsonLine(line: string, maxDepth: number): unknown {
  try {
    const value: unknown = JSON.parse(line);
    if (exceedsDepth(line, maxDepth)) {
      return new RowError('PIPE_ROW_INVALID', `JSON nested deeper than maxDepth (${maxDepth})`, line.slice(0, RAW_PREVIEW_CHARS));
    }
    return value;
  } catch (err) {
    if (line.trim() === '') return undefined;
    const reason = err instanceof Error ? err.message : String(err);
    return new RowError('PIPE_ROW_INVALID', `invalid JSON: ${reason}`, line.slice(0, RAW_PREVIEW_CHARS));
  }
}

export function jsonlStage(options: JsonlOptions): StreamStage {
  return async function* jsonl(source: AsyncIterable<unknown>, { signal }: { signal: AbortSignal }) {
    const splitter = new LineSplitter({ maxLineBytes: options.maxLineBytes, encoding: 'utf8' });
    const out: LineItem[] = [];
    // The records of a chunk's lines, yielded at once and ending at the splitter's line boundary
    // (blank lines yield nothing but still move it), as the `lines` loader does.
    const decode = (items: LineItem[]): RecordBatch | undefined => {
      const records: unknown[] = [];
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        const value = item instanceof RowError ? item : parseJsonLine(item, options.maxDepth);
        if (value !== undefined) records.push(value);
      }
      items.length = 0;
      return records.length ? new RecordBatch(records, splitter.boundary) : undefined;
    };
    for await (const chunk of source) {
      signal.throwIfAborted();
      splitter.push(toBuffer(chunk), out);
      const batch = decode(out);
      if (batch) yield batch;
    }
    splitter.end(out);
    const batch = decode(out);
    if (batch) yield batch;
  };
}

export function create(options: Record<string, unknown>, _ctx: ComponentContext): Loader {
  const depth = options['maxDepth'];
  const opts: JsonlOptions = { ...linesOptions(options), maxDepth: typeof depth === 'number' ? depth : DEFAULT_MAX_DEPTH };
  return { output: 'records', stage: () => jsonlStage(opts) };
}
