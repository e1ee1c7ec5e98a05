/**
 * The parsed YAML as a small tree that remembers the line of every node and key, with `${VAR}`
 * already expanded in string values (never in keys). Validation works on this tree rather than
 * on plain JS values so that every problem can name its line.
 *
 * Building it is also where hostile YAML is refused. Aliases are expanded here (the YAML library
 * keeps them as references), so the values reached through aliases are counted and a file whose
 * aliases expand past ALIAS_BUDGET (a "billion laughs" bomb) is a problem, found in microseconds
 * instead of filling memory. Explicit tags other than YAML's plain ones (`!!js/function`, `!foo`,
 * `!!binary`) are problems too: a pipeline file holds strings, numbers, booleans, lists and mappings.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter } from 'yaml';
import { isSecretName } from '../redact.js';
import { expandVariables } from './expand.js';
import type { ConfigProblem } from './problems.js';

export type Located = LocatedMap | LocatedSeq | LocatedScalar;

export interface LocatedMap {
  kind: 'map';
  line: number;
  entries: LocatedEntry[];
}

export interface LocatedEntry {
  key: string;
  /** The line of the key, where "unknown key" is reported. */
  line: number;
  value: Located;
}

export interface LocatedSeq {
  kind: 'seq';
  line: number;
  items: Located[];
}

export interface LocatedScalar {
  kind: 'scalar';
  line: number;
  /** `null` for a key written without a value. */
  value: unknown;
  /** True when the value came from `${VAR}`: validation may then read `"8"` as a number. */
  substituted: boolean;
  /** Expansion failed and was reported: validation must say nothing more about this value. */
  failed?: boolean;
  /**
   * The text as written (`${DB_PASSWORD}`), present when a variable whose name says it is a secret
   * was expanded: problems quote this instead of the value.
   */
  written?: string;
}

/** Values (scalars, lists, mappings) that aliases may expand to in one file: far above any real pipeline. */
export const ALIAS_BUDGET = 10_000;

const bombs = new WeakSet<ConfigProblem>();

/** The problem an alias bomb makes: when there is one, the rest (values cut short) is noise. */
export function isAliasBomb(p: ConfigProblem): boolean {
  return bombs.has(p);
}

/** YAML's own tags for plain values; any other explicit tag is refused. */
const PLAIN_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));

export function childPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

export function itemPath(path: string, index: number): string {
  return `${path}[${index}]`;
}

interface Walk {
  doc: Document;
  lines: LineCounter;
  env: Readonly<Record<string, string | undefined>>;
  problems: ConfigProblem[];
  /** How many aliases are being expanded on the way here. */
  aliasDepth: number;
  /** Values aliases may still expand to; below 0 the file is refused. */
  aliasBudget: number;
  /** The outermost alias being expanded: where a bomb is reported. */
  aliasRoot?: { path: string; line: number; name: string };
}

/** The document's contents as a located tree; undefined for an empty document. */
export function locateDocument(
  doc: Document,
  lines: LineCounter,
  env: Readonly<Record<string, string | undefined>>,
  problems: ConfigProblem[],
): Located | undefined {
  if (doc.contents === null) return undefined;
  return locate(doc.contents, '', new Set(), { doc, lines, env, problems, aliasDepth: 0, aliasBudget: ALIAS_BUDGET });
}

function lineAt(w: Walk, node: unknown, fallback: number): number {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? w.lines.linePos(range[0]).line : fallback;
}

/** `inside` holds the anchors being expanded on the way here, to catch `&a [*a]`. */
function locate(node: unknown, path: string, inside: ReadonlySet<unknown>, w: Walk, fallbackLine = 1): Located {
  const line = lineAt(w, node, fallbackLine);
  const failed = (message?: string): Located => {
    if (message) w.problems.push({ path, line, message });
    return { kind: 'scalar', line, value: null, substituted: false, failed: true };
  };
  if (w.aliasDepth > 0 && --w.aliasBudget < 0) {
    // Reported once, at the alias whose expansion ran out of budget; every value after that is cut short at once.
    if (w.aliasBudget === -1 && w.aliasRoot) {
      const { path: at, line: aliasLine, name } = w.aliasRoot;
      const message = `aliases expand to more than ${ALIAS_BUDGET} values by here (*${name}; an alias bomb?): refused, write the values out or use fewer aliases`;
      const problem = { path: at, line: aliasLine, message };
      bombs.add(problem);
      w.problems.push(problem);
    }
    return failed();
  }
  if (isAlias(node)) {
    const target = node.resolve(w.doc);
    const problem = !target ? `unknown alias *${node.source}` : inside.has(target) ? `alias *${node.source} refers to itself` : undefined;
    if (problem) return failed(problem);
    if (w.aliasDepth++ === 0) w.aliasRoot = { path, line, name: node.source };
    try {
      return { ...locate(target, path, new Set([...inside, target]), w, line), line };
    } finally {
      w.aliasDepth--;
    }
  }
  const tag = (node as { tag?: unknown } | null)?.tag;
  if (typeof tag === 'string' && !PLAIN_TAGS.has(tag)) {
    // A block collection starts at its first item, a line below its tag: name the key's line.
    const at = isMap(node) || isSeq(node) ? Math.min(line, fallbackLine) : line;
    w.problems.push({ path, line: at, message: tagProblem(tag) });
    return { kind: 'scalar', line: at, value: null, substituted: false, failed: true };
  }
  // Collections are added to `inside` so an alias back to an enclosing anchor is caught.
  const within = isMap(node) || isSeq(node) ? new Set([...inside, node]) : inside;
  if (isMap(node)) {
    const entries: LocatedEntry[] = [];
    for (const pair of node.items) {
      const keyLine = lineAt(w, pair.key, lineAt(w, pair.value, line));
      if (pair.key !== null && !isScalar(pair.key)) {
        w.problems.push({ path, line: keyLine, message: 'keys must be plain names, not lists or mappings' });
        continue;
      }
      if (isScalar(pair.key) && typeof pair.key.tag === 'string' && !PLAIN_TAGS.has(pair.key.tag)) {
        w.problems.push({ path, line: keyLine, message: tagProblem(pair.key.tag) });
        continue;
      }
      const key = String(isScalar(pair.key) ? pair.key.value : '');
      entries.push({ key, line: keyLine, value: locate(pair.value, childPath(path, key), within, w, keyLine) });
    }
    return { kind: 'map', line, entries };
  }
  if (isSeq(node)) {
    const items = node.items.map((item, i) => locate(item, itemPath(path, i), within, w, line));
    return { kind: 'seq', line, items };
  }
  if (isScalar(node)) {
    if (typeof node.value !== 'string') return { kind: 'scalar', line, value: node.value, substituted: false };
    const expansion = expandVariables(node.value, w.env);
    for (const message of expansion.problems) w.problems.push({ path, line, message });
    const bad = expansion.problems.length > 0;
    const secret = expansion.substituted && [...node.value.matchAll(VARIABLE)].some((m) => isSecretName(m[1]!));
    return {
      kind: 'scalar', line, value: expansion.value, substituted: expansion.substituted,
      ...(bad && { failed: bad }), ...(secret && { written: node.value }),
    };
  }
  // `key:` with nothing after it: the YAML library gives null or an empty scalar.
  return { kind: 'scalar', line, value: null, substituted: false };
}

/** A `${NAME` reference (not the literal `$${`), for telling which variables a value used. */
const VARIABLE = /(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)/g;

/** `!!js/function is not allowed…`: YAML's long tag names shortened to how they are written. */
function tagProblem(tag: string): string {
  const written = tag.startsWith('tag:yaml.org,2002:') ? `!!${tag.slice('tag:yaml.org,2002:'.length)}` : tag.startsWith('!') ? tag : `!<${tag}>`;
  return `YAML tag ${written} is not allowed: a pipeline file holds plain strings, numbers, booleans, lists and mappings`;
}

/**
 * Plain JS values as a located tree (line 0): for options that come from code rather than YAML,
 * such as a mapper's default loader or `pipe tail --mapper`, so they get the same validation.
 */
export function locateValue(value: unknown, line = 0): Located {
  if (Array.isArray(value)) return { kind: 'seq', line, items: value.map((v) => locateValue(v, line)) };
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).map(([key, v]) => ({ key, line, value: locateValue(v, line) }));
    return { kind: 'map', line, entries };
  }
  return { kind: 'scalar', line, value: value ?? null, substituted: false };
}
