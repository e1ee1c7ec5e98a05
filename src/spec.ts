/**
 * Component specs: every component declares its options here once, and config validation,
 * `pipe list`, the README's component table and the example tests are all generated from them.
 */
export type OptionType =
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  | 'duration'
  | 'size'
  | 'enum'
  | 'strings'
  | 'string-or-strings'
  | 'object';

export interface OptionSpec {
  type: OptionType;
  description: string;
  required?: boolean;
  default?: unknown;
  example?: unknown;
  /** For `enum`. */
  values?: readonly string[];
  /** For numbers, durations (ms) and sizes (bytes). */
  min?: number;
  max?: number;
}

export type ComponentKind = 'source' | 'loader' | 'mapper' | 'sink';

export interface ComponentSpec {
  kind: ComponentKind;
  type: string;
  summary: string;
  options: Record<string, OptionSpec>;
  /** Mappers: the loader chain used when the pipeline declares none. */
  defaultLoader?: Array<{ type: string; [k: string]: unknown }>;
  /**
   * Mappers: `records` when the mapper reads raw loader output (a line, a parsed document), as
   * cloudtrail and vpcflow do; `rows` (the default) when it edits rows, so the engine first turns
   * raw records into rows (`{ message }` for a line, the object itself for JSON).
   */
  consumes?: 'records' | 'rows';
  /**
   * Loaders and mappers: pure per artifact (no shared state, no store), so the engine may run it in
   * worker threads, one instance per thread.
   */
  parallel?: boolean;
  /**
   * Checks beyond each option's type (a filter expression's syntax), run by config validation
   * after the options are converted, so `pipe validate` reports them with their path and line.
   */
  check?(options: Record<string, unknown>): Array<{ option: string; message: string }>;
  /**
   * Reachability, for `pipe validate --ping`, given the validated options: the bucket can be
   * listed, the log group exists, the directory can be read or written. Resolves to a short
   * "ok: …" description; throws a PipeError saying what is wrong otherwise. Reads and writes nothing.
   */
  ping?(options: Record<string, unknown>): Promise<string>;
}

/** What a component module exports: its spec and the factory that builds it from validated options. */
export interface ComponentModule<T = unknown> {
  spec: ComponentSpec;
  create(options: Record<string, unknown>, ctx: import('./types.js').ComponentContext): T | Promise<T>;
}
