/**
 * Finding the module behind a component `type`: a built-in name (`s3`, `filter`) or a module
 * specifier with an optional export name after `#`:
 *
 *   ./local/mapper.js#Mapper   a file, relative to the pipeline's directory (or absolute, or file:)
 *   my-pkg#MySource            a package installed next to the pipeline (`npm install my-pkg`)
 *   @scope/pkg/sub#X           a package subpath
 *   ./x.js, my-pkg#            the default export, or the module itself if it exports spec and create
 *
 * A type is a specifier when it contains `#` or `/` or starts with `.`; any other word is a
 * built-in name, so a misspelt `cloudtrial` is "unknown mapper type", not "cannot find package".
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ComponentKind, ComponentModule } from '../spec.js';
import { closest } from './problems.js';

/** Why a component could not be resolved, in a sentence the config problem shows as it is. */
export interface ResolveFailure {
  reason: string;
}

/**
 * Given by the caller of `loadPipeline`. `undefined` means "no such type" (the loader then says
 * so in general terms); a `ResolveFailure` carries a specific reason.
 */
export type ComponentResolver = (
  kind: ComponentKind,
  type: string,
  baseDir: string,
) => Promise<ComponentModule | ResolveFailure | undefined>;

export type BuiltinComponents = Record<ComponentKind, Record<string, ComponentModule>>;

/** Built-ins known by name and imported on first use (builtin-modules.ts). */
export interface BuiltinTable {
  types(kind: ComponentKind): string[];
  load(kind: ComponentKind, type: string): Promise<ComponentModule | undefined>;
}

function tableOf(builtins: BuiltinComponents | BuiltinTable): BuiltinTable {
  if ('load' in builtins && typeof builtins.load === 'function') return builtins as BuiltinTable;
  const all = builtins as BuiltinComponents;
  return {
    types: (kind) => Object.keys(all[kind]),
    load: (kind, type) => Promise.resolve(Object.hasOwn(all[kind], type) ? all[kind][type] : undefined),
  };
}

export function isComponentModule(value: unknown): value is ComponentModule {
  if (typeof value !== 'object' || value === null) return false;
  const { spec, create } = value as { spec?: unknown; create?: unknown };
  return typeof spec === 'object' && spec !== null && typeof create === 'function' &&
    typeof (spec as { kind?: unknown }).kind === 'string' && typeof (spec as { options?: unknown }).options === 'object';
}

export function isModuleSpecifier(type: string): boolean {
  return type.includes('#') || type.includes('/') || type.startsWith('.');
}

export function makeResolver(builtins: BuiltinComponents | BuiltinTable): ComponentResolver {
  const table = tableOf(builtins);
  return async (kind, type, baseDir) => {
    const builtin = table.types(kind).includes(type) ? await table.load(kind, type) : undefined;
    if (builtin) return builtin;
    if (isModuleSpecifier(type)) return importComponent(type, baseDir);
    return { reason: unknownBuiltin(table, kind, type) };
  };
}

const KINDS: ComponentKind[] = ['source', 'loader', 'mapper', 'sink'];

function unknownBuiltin(table: BuiltinTable, kind: ComponentKind, type: string): string {
  const known = table.types(kind).sort();
  const elsewhere = KINDS.find((k) => k !== kind && table.types(k).includes(type));
  const hint = elsewhere ? ` (${type} is a ${elsewhere})` : closestHint(type, known);
  return `unknown ${kind} type '${type}'${hint}; known ${kind} types: ${known.join(', ') || 'none'}, ` +
    `or a module specifier such as ./my-${kind}.js#Export or my-package#Export`;
}

function closestHint(type: string, known: string[]): string {
  const near = closest(type, known);
  return near ? ` (did you mean ${near}?)` : '';
}

/** Imports `specifier#Export` from the pipeline's directory and checks it is a component. */
export async function importComponent(type: string, baseDir: string): Promise<ComponentModule | ResolveFailure> {
  const hash = type.lastIndexOf('#');
  const specifier = hash < 0 ? type : type.slice(0, hash);
  const exportName = hash < 0 || hash === type.length - 1 ? undefined : type.slice(hash + 1);
  let url: string;
  try {
    url = await locateModule(specifier, baseDir);
  } catch (err) {
    return { reason: `cannot find module '${specifier}' from ${baseDir}: ${firstLine(err)}` };
  }
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    return { reason: `cannot import '${specifier}': ${firstLine(err)}` };
  }
  // Without `#Export`: the default export, or else the module itself when it exports `spec` and
  // `create` side by side, as the built-in components do.
  if (exportName === undefined && !isComponentModule(namespace.default) && isComponentModule(namespace)) return namespace;
  const name = exportName ?? 'default';
  if (!Object.hasOwn(namespace, name) || namespace[name] === undefined) {
    const names = Object.keys(namespace).filter((n) => n !== '__esModule');
    return { reason: `module '${specifier}' has no export '${name}'; it exports: ${names.join(', ') || 'nothing'}` };
  }
  const value = namespace[name];
  if (!isComponentModule(value)) {
    return { reason: `export '${name}' of '${specifier}' is not a component: expected an object with spec and create` };
  }
  return value;
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!;
}

/** A file URL for the specifier, resolved as Node would from a module in `baseDir`. */
async function locateModule(specifier: string, baseDir: string): Promise<string> {
  if (specifier.startsWith('file:')) return specifier;
  if (specifier.startsWith('.') || path.isAbsolute(specifier)) {
    return pathToFileURL(path.resolve(baseDir, specifier)).href;
  }
  const require = createRequire(path.join(baseDir, '__pipe__.js'));
  try {
    return pathToFileURL(require.resolve(specifier)).href;
  } catch (err) {
    // require.resolve only knows the "require" export condition; an ESM-only package that exports
    // just "import" fails there, so look its entry point up under the "import" condition.
    if ((err as { code?: string }).code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') throw err;
    return pathToFileURL(await resolveImportExport(specifier, baseDir)).href;
  }
}

const CONDITIONS = ['node', 'import', 'default'];

async function resolveImportExport(specifier: string, baseDir: string): Promise<string> {
  const parts = specifier.split('/');
  const nameLength = specifier.startsWith('@') ? 2 : 1;
  const name = parts.slice(0, nameLength).join('/');
  const subpath = ['.', ...parts.slice(nameLength)].join('/');
  const require = createRequire(path.join(baseDir, '__pipe__.js'));
  for (const dir of require.resolve.paths(name) ?? []) {
    const pkgDir = path.join(dir, name);
    let manifest: { exports?: unknown };
    try {
      manifest = JSON.parse(await readFile(path.join(pkgDir, 'package.json'), 'utf8')) as { exports?: unknown };
    } catch {
      continue;
    }
    const exportsField = manifest.exports;
    const isSubpathMap = typeof exportsField === 'object' && exportsField !== null &&
      Object.keys(exportsField).some((k) => k.startsWith('.'));
    const entry = isSubpathMap ? (exportsField as Record<string, unknown>)[subpath] : subpath === '.' ? exportsField : undefined;
    const target = pickCondition(entry);
    if (target) return path.join(pkgDir, target);
    throw new Error(`package '${name}' does not export '${subpath}' for import`);
  }
  throw new Error(`package '${name}' is not installed`);
}

function pickCondition(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry;
  if (Array.isArray(entry)) return entry.map(pickCondition).find((t) => t !== undefined);
  if (typeof entry !== 'object' || entry === null) return undefined;
  for (const [condition, target] of Object.entries(entry)) {
    if (CONDITIONS.includes(condition)) {
      const found = pickCondition(target);
      if (found) return found;
    }
  }
  return undefined;
}
