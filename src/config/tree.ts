/**
 * The parsed YAML as a small tree that remembers the line of every node and key, with `${VAR}`
 * already expanded in string values (never in keys). Validation works on this tree rather than
 * on plain JS values so that every problem can name its line.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter } from 'yaml';
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
}

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
}

/** The document's contents as a located tree; undefined for an empty document. */
export function locateDocument(
  doc: Document,
  lines: LineCounter,
  env: Readonly<Record<string, string | undefined>>,
  problems: ConfigProblem[],
): Located | undefined {
  if (doc.contents === null) return undefined;
  return locate(doc.contents, '', new Set(), { doc, lines, env, problems });
}

function lineAt(w: Walk, node: unknown, fallback: number): number {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? w.lines.linePos(range[0]).line : fallback;
}

/** `inside` holds the anchors being expanded on the way here, to catch `&a [*a]`. */
function locate(node: unknown, path: string, inside: ReadonlySet<unknown>, w: Walk, fallbackLine = 1): Located {
  const line = lineAt(w, node, fallbackLine);
  if (isAlias(node)) {
    const target = node.resolve(w.doc);
    const problem = !target ? `unknown alias *${node.source}` : inside.has(target) ? `alias *${node.source} refers to itself` : undefined;
    if (problem) {
      w.problems.push({ path, line, message: problem });
      return { kind: 'scalar', line, value: null, substituted: false, failed: true };
    }
    return { ...locate(target, path, new Set([...inside, target]), w, line), line };
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
    const failed = expansion.problems.length > 0;
    return { kind: 'scalar', line, value: expansion.value, substituted: expansion.substituted, ...(failed && { failed }) };
  }
  // `key:` with nothing after it: the YAML library gives null or an empty scalar.
  return { kind: 'scalar', line, value: null, substituted: false };
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
