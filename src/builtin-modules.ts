/**
 * Where the built-in loaders and mappers live, by type, so that a worker thread imports only the
 * components its pipeline uses (registry.ts imports every component, the AWS sources among them,
 * which would add a tenth of a second to each worker's start). A test checks both lists agree.
 */
import type { ComponentModule } from './spec.js';

const MODULES = {
  loader: { gzip: './loaders/gzip.js', lines: './loaders/lines.js', json: './loaders/json.js', jsonl: './loaders/jsonl.js' },
  mapper: {
    cloudtrail: './mappers/cloudtrail.js', vpcflow: './mappers/vpcflow.js', filter: './mappers/filter.js', set: './mappers/set.js',
    rename: './mappers/rename.js', drop: './mappers/drop.js', dedupe: './mappers/dedupe.js',
  },
} as const satisfies Record<'loader' | 'mapper', Record<string, string>>;

export type DecodingKind = keyof typeof MODULES;

export function builtinModuleTypes(kind: DecodingKind): string[] {
  return Object.keys(MODULES[kind]);
}

/** The built-in loader or mapper of that type, or undefined when there is none. */
export async function importBuiltin(kind: DecodingKind, type: string): Promise<ComponentModule | undefined> {
  const table: Record<string, string> = MODULES[kind];
  if (!Object.hasOwn(table, type)) return undefined;
  return (await import(new URL(table[type]!, import.meta.url).href)) as ComponentModule;
}
