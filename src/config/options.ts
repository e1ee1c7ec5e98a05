/**
 * Checks one component's options against its spec and turns them into what the factory gets:
 * unknown keys refused, types checked, durations in milliseconds, sizes in bytes, defaults filled.
 *
 * A key written without a value (`endpoint:`), or a value that was only `${VAR}` references and
 * came out empty (`endpoint: ${S3_ENDPOINT:-}`), counts as not given, so the default applies.
 * Values that came from `${VAR}` are strings; for integer, number and boolean options they are
 * read as such (`concurrency: ${CONCURRENCY:-8}`), since the environment has only strings.
 * `string-or-strings` values are kept as given (a string or a list), so a component can tell
 * "one name" from "a list of names"; `strings` must be a list.
 */
import type { ComponentSpec, OptionSpec } from '../spec.js';
import { closest, type ConfigProblem } from './problems.js';
import { childPath, itemPath, locateValue, type Located, type LocatedMap } from './tree.js';
import { formatDuration, formatSize, parseDuration, parseSize } from './units.js';

const INVALID = Symbol('invalid');
type Converted = unknown | typeof INVALID;

/** What an option accepts, in words: "a duration such as 30s". Also used by `pipe list`. */
export function describeOption(opt: OptionSpec): string {
  switch (opt.type) {
    case 'string': return 'a string';
    case 'integer': return 'an integer';
    case 'number': return 'a number';
    case 'boolean': return 'true or false';
    case 'duration': return 'a duration such as 30s';
    case 'size': return 'a size such as 64MiB';
    case 'enum': return `one of ${(opt.values ?? []).join(', ')}`;
    case 'strings': return 'a list of strings';
    case 'string-or-strings': return 'a string or a list of strings';
    case 'object': return 'a mapping of names to plain values';
  }
}

export function validateOptions(
  spec: ComponentSpec,
  map: LocatedMap | undefined,
  path: string,
  line: number,
  problems: ConfigProblem[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const known = Object.keys(spec.options);
  for (const entry of map?.entries ?? []) {
    if (entry.key === 'type') continue;
    const optPath = childPath(path, entry.key);
    const opt = Object.hasOwn(spec.options, entry.key) ? spec.options[entry.key] : undefined;
    if (!opt) {
      const hint = closest(entry.key, known);
      const list = known.length ? `known options: ${known.join(', ')}` : `it takes no options`;
      const message = `unknown option for ${spec.kind} ${spec.type}${hint ? ` (did you mean ${hint}?)` : ''}; ${list}`;
      problems.push({ path: optPath, line: entry.line, message });
      continue;
    }
    if (isAbsent(entry.value)) continue;
    const value = entry.value.kind === 'scalar' && entry.value.failed ? INVALID : convert(opt, entry.value, optPath, problems);
    // A bad value is reported once; it must not also be reported as missing below.
    out[entry.key] = value === INVALID ? undefined : value;
  }
  for (const [name, opt] of Object.entries(spec.options)) {
    if (Object.hasOwn(out, name)) {
      if (out[name] === undefined) delete out[name];
      continue;
    }
    if (opt.default !== undefined) {
      const value = normalizeDefault(opt);
      if (value === INVALID) {
        problems.push({ path: childPath(path, name), line, message: `the ${spec.type} component's default is not ${describeOption(opt)} (a bug in the component)` });
      } else out[name] = value;
    } else if (opt.required) {
      const example = opt.example === undefined ? '' : `, e.g. ${JSON.stringify(opt.example)}`;
      problems.push({ path: childPath(path, name), line, message: `required: ${describeOption(opt)}${example}` });
    }
  }
  return out;
}

/**
 * The same validation for options given as plain values by code (a mapper's `defaultLoader`,
 * `pipe tail --mapper`): problems name `path` and line 0.
 */
export function validateComponentOptions(
  spec: ComponentSpec,
  values: Record<string, unknown>,
  path: string,
): { options: Record<string, unknown>; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const options = validateOptions(spec, locateValue(values) as LocatedMap, path, 0, problems);
  return { options, problems };
}

function isAbsent(node: Located): boolean {
  return node.kind === 'scalar' && !node.failed && (node.value === null || (node.substituted && node.value === ''));
}

function normalizeDefault(opt: OptionSpec): Converted {
  if (opt.type === 'duration') return parseDuration(opt.default) ?? INVALID;
  if (opt.type === 'size') return parseSize(opt.default) ?? INVALID;
  // A copy, so a component that mutates its options cannot change the next pipeline's default.
  return structuredClone(opt.default);
}

function shown(node: Located): string {
  if (node.kind === 'map') return 'a mapping';
  if (node.kind === 'seq') return 'a list';
  // A secret-named variable's value is never quoted back: the reference as written is.
  if (node.written !== undefined) return `'${node.written}'`;
  if (typeof node.value === 'string') {
    const text = node.value.length > 60 ? `${node.value.slice(0, 57)}...` : node.value;
    return `'${text}'`;
  }
  return String(node.value);
}

function convert(opt: OptionSpec, node: Located, path: string, problems: ConfigProblem[]): Converted {
  const fail = (message = `expected ${describeOption(opt)}, got ${shown(node)}`): typeof INVALID => {
    problems.push({ path, line: node.line, message });
    return INVALID;
  };
  const scalar = node.kind === 'scalar' ? node.value : undefined;
  const fromEnv = node.kind === 'scalar' && node.substituted && typeof scalar === 'string';
  switch (opt.type) {
    case 'string':
      return typeof scalar === 'string' ? scalar : fail();
    case 'boolean': {
      if (typeof scalar === 'boolean') return scalar;
      const text = fromEnv ? String(scalar).toLowerCase() : undefined;
      return text === 'true' ? true : text === 'false' ? false : fail();
    }
    case 'integer':
    case 'number': {
      let n = scalar;
      if (fromEnv && /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(String(scalar))) n = Number(scalar);
      if (typeof n !== 'number' || !Number.isFinite(n)) return fail();
      if (opt.type === 'integer' && !Number.isSafeInteger(n)) return fail();
      return inRange(opt, n, node.kind === 'scalar' && node.written !== undefined ? shown(node) : String(n), fail);
    }
    case 'duration': {
      // A bare number is refused: `poll: 60` reads as seconds to some and milliseconds to others.
      if (typeof scalar === 'number' && scalar !== 0) {
        return fail(`expected a duration with a unit such as ${scalar}s or ${scalar}ms, got ${scalar}`);
      }
      const ms = typeof scalar === 'string' || scalar === 0 ? parseDuration(scalar) : undefined;
      return ms === undefined ? fail() : inRange(opt, ms, shown(node), fail, formatDuration);
    }
    case 'size': {
      const bytes = typeof scalar === 'string' || typeof scalar === 'number' ? parseSize(scalar) : undefined;
      if (bytes === undefined) return fail(`expected a size such as 64MiB (KiB/MiB/GiB are 1024-based, KB/MB/GB 1000-based), got ${shown(node)}`);
      return inRange(opt, bytes, shown(node), fail, formatSize);
    }
    case 'enum': {
      const values = opt.values ?? [];
      if (typeof scalar === 'string' && values.includes(scalar)) return scalar;
      const hint = typeof scalar === 'string' ? closest(scalar, values) : undefined;
      return fail(`expected ${describeOption(opt)}, got ${shown(node)}${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
    case 'string-or-strings':
      if (typeof scalar === 'string') return scalar;
      return node.kind === 'seq' ? stringList(node.items, path, problems) : fail();
    case 'strings':
      return node.kind === 'seq' ? stringList(node.items, path, problems) : fail();
    case 'object': {
      if (node.kind !== 'map') return fail();
      const out: Record<string, unknown> = {};
      let ok = true;
      for (const entry of node.entries) {
        if (entry.value.kind !== 'scalar') {
          problems.push({ path: childPath(path, entry.key), line: entry.value.line, message: `expected a plain value, got ${shown(entry.value)}` });
          ok = false;
        } else out[entry.key] = entry.value.value;
      }
      return ok ? out : INVALID;
    }
  }
}

function stringList(items: Located[], path: string, problems: ConfigProblem[]): Converted {
  const out: string[] = [];
  items.forEach((item, i) => {
    if (item.kind === 'scalar' && typeof item.value === 'string') out.push(item.value);
    else if (!(item.kind === 'scalar' && item.failed)) problems.push({ path: itemPath(path, i), line: item.line, message: `expected a string, got ${shown(item)}` });
  });
  return out.length === items.length ? out : INVALID;
}

function inRange(
  opt: OptionSpec,
  n: number,
  given: string,
  fail: (message: string) => typeof INVALID,
  format: (n: number) => string = String,
): Converted {
  if (opt.min !== undefined && n < opt.min) return fail(`expected at least ${format(opt.min)}, got ${given}`);
  if (opt.max !== undefined && n > opt.max) return fail(`expected at most ${format(opt.max)}, got ${given}`);
  return n;
}
