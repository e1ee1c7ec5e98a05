/**
 * Where each built-in component lives, by kind and type, so that a command imports only the
 * components its pipelines use (registry.ts imports every one, the AWS sources and sinks among
 * them, which costs tens of milliseconds at every start) and a worker thread only its loaders and
 * mappers. A test checks that this table and the registry agree.
 */
import type { BuiltinTable } from './config/resolve.js';
import type { ComponentKind, ComponentModule } from './spec.js';

const MODULES: Record<ComponentKind, Record<string, string>> = {
  source: { files: './sources/files.js', s3: './sources/s3.js', cloudwatch: './sources/cloudwatch.js', tail: './sources/tail.js' },
  loader: { gzip: './loaders/gzip.js', lines: './loaders/lines.js', json: './loaders/json.js', jsonl: './loaders/jsonl.js' },
  mapper: {
    cloudtrail: './mappers/cloudtrail.js', vpcflow: './mappers/vpcflow.js', filter: './mappers/filter.js', set: './mappers/set.js',
    rename: './mappers/rename.js', drop: './mappers/drop.js', dedupe: './mappers/dedupe.js',
  },
  sink: { jsonl: './sinks/jsonl.js', s3: './sinks/s3.js', stdout: './sinks/stdout.js' },
};

export type DecodingKind = 'loader' | 'mapper';

export function builtinModuleTypes(kind: ComponentKind): string[] {
  return Object.keys(MODULES[kind]);
}

/** The built-in component of that kind and type, or undefined when there is none. */
export async function importBuiltin(kind: ComponentKind, type: string): Promise<ComponentModule | undefined> {
  const table = MODULES[kind];
  if (!Object.hasOwn(table, type)) return undefined;
  return (await import(new URL(table[type]!, import.meta.url).href)) as ComponentModule;
}

/** The built-ins for a resolver, each imported when a pipeline first names it. */
export const lazyBuiltins: BuiltinTable = { types: builtinModuleTypes, load: importBuiltin };
