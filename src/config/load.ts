/**
 * Loading a pipeline file: read → parse YAML (keeping lines) → expand `${VAR}` → check the shape
 * → resolve each component's module → validate its options against the module's spec.
 * Problems are collected through every step and reported together in one ConfigError, except
 * after a YAML syntax error: the document's shape is then unreliable and would only add noise.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { ComponentKind, ComponentModule } from '../spec.js';
import { validateOptions } from './options.js';
import { closest, ConfigError, sortProblems, type ConfigProblem } from './problems.js';
import { isComponentModule, type ComponentResolver, type ResolveFailure } from './resolve.js';
import { childPath, isAliasBomb, itemPath, locateDocument, type Located, type LocatedMap } from './tree.js';

export interface ComponentConfig {
  /** The type as written: a built-in name or a module specifier. */
  type: string;
  /** Where it sits in the file: `source`, `loader[0]`, `mappers[1]`, `sink`. */
  path: string;
  line: number;
  /** Validated: unknown keys refused, defaults applied, durations in ms, sizes in bytes. */
  options: Record<string, unknown>;
  module: ComponentModule;
}

export interface PipelineConfig {
  name: string;
  /** Absolute path of the pipeline file. */
  file: string;
  /** Its directory, against which module specifiers such as `./local/mapper.js#Mapper` are resolved. */
  baseDir: string;
  /**
   * As written: a file path (relative ones are relative to the working directory, like every
   * path option, so `pipe run pipelines/x.yml` from the project root finds ./.pipe/state.db) or a URL.
   */
  state?: string;
  source: ComponentConfig;
  /** Absent when the file has no `loader` (each mapper's default loader then applies); else as written, even `[]`. */
  loader?: ComponentConfig[];
  mappers: ComponentConfig[];
  sink: ComponentConfig;
}

export interface LoadOptions {
  env: NodeJS.ProcessEnv;
  resolve: ComponentResolver;
}

export interface Validation {
  /** Present only when there are no problems. */
  config?: PipelineConfig;
  /** Sorted by line. */
  problems: ConfigProblem[];
}

const TOP_LEVEL = ['name', 'state', 'source', 'loader', 'mappers', 'sink'];
const NAME = /^[A-Za-z0-9._-]+$/;
/**
 * The name is also a directory name in the sink (`.pipe-tmp/<name>/`): `.` and `..` would be
 * another directory, and the length is bounded so `<name>.owner.json` fits in a file name.
 */
const NAME_MAX = 128;

/** The validated pipeline, or a ConfigError (code PIPE_CONFIG_INVALID) listing every problem. */
export async function loadPipeline(file: string, opts: LoadOptions): Promise<PipelineConfig> {
  const { config, problems } = await validatePipelineFile(file, opts);
  if (!config) throw new ConfigError(file, problems);
  return config;
}

/** Like loadPipeline, but returns the problems instead of throwing: for `pipe validate`. */
export async function validatePipelineFile(file: string, opts: LoadOptions): Promise<Validation> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    return { problems: [{ path: '', line: 0, message: `cannot read the pipeline file: ${why}` }] };
  }
  return validatePipelineText(text, file, opts);
}

/** Validates YAML text as if it were the file `file` (whose directory is the base directory). */
export async function validatePipelineText(text: string, file: string, opts: LoadOptions): Promise<Validation> {
  const absolute = path.resolve(file);
  const baseDir = path.dirname(absolute);
  const lines = new LineCounter();
  // resolveKnownTags: false keeps `!!binary`, `!!set`, `!!timestamp` … unconstructed: tree.ts refuses them.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, resolveKnownTags: false });
  if (doc.errors.length > 0) {
    const sourceLines = text.split('\n');
    // After the first syntax error the parser's recovery reports echoes of it; duplicate keys are
    // the exception, found independently of one another.
    const errors = doc.errors.filter((err, i) => i === 0 || err.code === 'DUPLICATE_KEY');
    const problems = errors.map((err) => {
      const line = lines.linePos(err.pos[0]).line;
      // `{ bucket: ${B} }` is a YAML error: in flow collections `{` and `}` are punctuation.
      const hint = sourceLines[line - 1]?.includes('${') ? ' (inside { } or [ ], quote values that use ${…})' : '';
      // The parser recurses per level of nesting: thousands of levels end its stack, not the process.
      const message = /call stack/i.test(err.message) ? 'the document is nested too deeply' : err.message;
      return { path: '', line, message: `YAML syntax: ${message}${hint}` };
    });
    return { problems: sortProblems(problems) };
  }
  const problems: ConfigProblem[] = [];
  const root = locateDocument(doc, lines, opts.env, problems);
  const bomb = problems.filter(isAliasBomb);
  if (bomb.length) return { problems: bomb };
  const config = await readPipeline(root, { file: absolute, baseDir, resolve: opts.resolve, problems });
  return problems.length > 0 || !config ? { problems: sortProblems(problems) } : { config, problems: [] };
}

interface Context {
  file: string;
  baseDir: string;
  resolve: ComponentResolver;
  problems: ConfigProblem[];
}

async function readPipeline(root: Located | undefined, ctx: Context): Promise<PipelineConfig | undefined> {
  const { problems } = ctx;
  if (root?.kind !== 'map') {
    const got = root === undefined ? 'an empty file' : root.kind === 'seq' ? 'a list' : 'a single value';
    problems.push({ path: '', line: root?.line ?? 1, message: `expected a mapping with name, source and sink, got ${got}` });
    return undefined;
  }
  const entries = new Map(root.entries.map((e) => [e.key, e]));
  for (const entry of root.entries) {
    if (TOP_LEVEL.includes(entry.key)) continue;
    const hint = closest(entry.key, TOP_LEVEL);
    const message = `unknown key${hint ? ` (did you mean ${hint}?)` : ''}; expected ${TOP_LEVEL.join(', ')}`;
    problems.push({ path: entry.key, line: entry.line, message });
  }
  const name = readString(entries.get('name'), 'name', root.line, true, problems);
  if (name !== undefined && (!NAME.test(name) || name === '.' || name === '..' || name.length > NAME_MAX)) {
    const { line, written } = entries.get('name')!.value as { line: number; written?: string };
    const shown = written ?? (name.length > 60 ? `${name.slice(0, 57)}...` : name);
    const why = name.length > NAME_MAX ? `at most ${NAME_MAX} characters`
      : NAME.test(name) ? `a name other than '.' and '..' (it names a directory in the sink)` : `letters, digits, '.', '_' or '-'`;
    problems.push({ path: 'name', line, message: `expected ${why}, got '${shown}'` });
  }
  const state = readString(entries.get('state'), 'state', root.line, false, problems);
  // One after another, not in parallel, so problems on one line keep a stable order.
  const source = await readSlot('source', entries.get('source'), root.line, ctx);
  const loader = await readList('loader', entries.get('loader')?.value, ctx);
  const mappers = await readList('mappers', entries.get('mappers')?.value, ctx);
  const sink = await readSlot('sink', entries.get('sink'), root.line, ctx);
  if (name === undefined || !source || !sink || problems.length > 0) return undefined;
  const config: PipelineConfig = { name, file: ctx.file, baseDir: ctx.baseDir, source, mappers: mappers ?? [], sink };
  if (state !== undefined) config.state = state;
  if (loader) config.loader = loader;
  return config;
}

type Entry = { key: string; line: number; value: Located } | undefined;

function readString(entry: Entry, key: string, line: number, required: boolean, problems: ConfigProblem[]): string | undefined {
  const node = entry?.value;
  if (failed(node)) return undefined;
  const absent = !node || (node.kind === 'scalar' && (node.value === null || (node.substituted && node.value === '')));
  if (absent) {
    if (required) problems.push({ path: key, line: entry?.line ?? line, message: 'required: a string' });
    return undefined;
  }
  if (node.kind === 'scalar' && typeof node.value === 'string') return node.value;
  const got = node.kind === 'scalar' ? String(node.value) : node.kind === 'seq' ? 'a list' : 'a mapping';
  problems.push({ path: key, line: node.line, message: `expected a string, got ${got}${node.kind === 'scalar' ? ' (quote it)' : ''}` });
  return undefined;
}

/** A value whose `${VAR}` or alias already failed and was reported. */
function failed(node: Located | undefined): boolean {
  return node?.kind === 'scalar' && node.failed === true;
}

async function readSlot(kind: 'source' | 'sink', entry: Entry, line: number, ctx: Context): Promise<ComponentConfig | undefined> {
  if (failed(entry?.value)) return undefined;
  if (!entry || (entry.value.kind === 'scalar' && entry.value.value === null)) {
    const example = kind === 'source' ? 'source: { type: files, path: ./logs }' : 'sink: { type: jsonl, dir: ./out }';
    ctx.problems.push({ path: kind, line: entry?.line ?? line, message: `required: a ${kind} such as ${example}` });
    return undefined;
  }
  return readComponent(kind, entry.value, kind, entry.line, ctx);
}

async function readList(key: 'loader' | 'mappers', node: Located | undefined, ctx: Context): Promise<ComponentConfig[] | undefined> {
  if (!node || failed(node) || (node.kind === 'scalar' && node.value === null)) return undefined;
  const kind: ComponentKind = key === 'loader' ? 'loader' : 'mapper';
  if (node.kind !== 'seq') {
    ctx.problems.push({ path: key, line: node.line, message: `expected a list of ${kind}s, such as [${kind === 'loader' ? 'gzip' : 'cloudtrail'}]` });
    return undefined;
  }
  const items: ComponentConfig[] = [];
  for (const [i, item] of node.items.entries()) {
    const component = await readComponent(kind, item, itemPath(key, i), item.line, ctx);
    if (component) items.push(component);
  }
  return items.length === node.items.length ? items : undefined;
}

/** A component written as a type name (`- gzip`) or a mapping with `type` and options. */
async function readComponent(kind: ComponentKind, node: Located, at: string, line: number, ctx: Context): Promise<ComponentConfig | undefined> {
  const { problems } = ctx;
  if (failed(node)) return undefined;
  let typeNode: Located | undefined = node;
  let options: LocatedMap | undefined;
  if (node.kind === 'map') {
    options = node;
    typeNode = node.entries.find((e) => e.key === 'type')?.value;
  } else if (node.kind !== 'scalar' || typeof node.value !== 'string') {
    const got = node.kind === 'seq' ? 'a list' : String(node.value);
    problems.push({ path: at, line: node.line, message: `expected a ${kind} type name or a mapping with a type, got ${got}` });
    return undefined;
  }
  if (failed(typeNode)) return undefined;
  if (!typeNode || typeNode.kind !== 'scalar' || typeNode.value === null || typeNode.value === '') {
    problems.push({ path: childPath(at, 'type'), line, message: `required: the ${kind} type, a built-in name or a module specifier` });
    return undefined;
  }
  if (typeof typeNode.value !== 'string') {
    problems.push({ path: childPath(at, 'type'), line: typeNode.line, message: `expected a ${kind} type name, got ${String(typeNode.value)}` });
    return undefined;
  }
  const type = typeNode.value;
  const module = await resolveModule(kind, type, childPath(at, 'type'), typeNode.line, ctx);
  if (!module) return undefined;
  const before = problems.length;
  const resolvedOptions = validateOptions(module.spec, options, at, line, problems);
  if (problems.length === before && module.spec.check) {
    for (const p of module.spec.check(resolvedOptions)) {
      const entry = options?.entries.find((e) => e.key === p.option);
      problems.push({ path: childPath(at, p.option), line: entry?.line ?? line, message: hideSecret(p.message, entry?.value) });
    }
  }
  return { type, path: at, line, options: resolvedOptions, module };
}

/** A check's message with a secret-named variable's value replaced by the reference as written. */
function hideSecret(message: string, node: Located | undefined): string {
  if (node?.kind !== 'scalar' || node.written === undefined || typeof node.value !== 'string' || node.value === '') return message;
  return message.split(node.value).join(node.written);
}

async function resolveModule(kind: ComponentKind, type: string, at: string, line: number, ctx: Context): Promise<ComponentModule | undefined> {
  let found: Awaited<ReturnType<ComponentResolver>>;
  try {
    found = await ctx.resolve(kind, type, ctx.baseDir);
  } catch (err) {
    found = { reason: `cannot load ${kind} '${type}': ${err instanceof Error ? err.message : String(err)}` };
  }
  if (found === undefined) {
    ctx.problems.push({ path: at, line, message: `unknown ${kind} type '${type}'` });
    return undefined;
  }
  if (!isComponentModule(found)) {
    const reason = (found as Partial<ResolveFailure>).reason;
    ctx.problems.push({ path: at, line, message: typeof reason === 'string' ? reason : `'${type}' is not a component: expected an object with spec and create` });
    return undefined;
  }
  if (found.spec.kind !== kind) {
    ctx.problems.push({ path: at, line, message: `'${type}' is a ${found.spec.kind}, but a ${kind} is expected here` });
    return undefined;
  }
  return found;
}
