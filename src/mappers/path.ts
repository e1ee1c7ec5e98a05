/**
 * Field paths shared by the field-editing mappers (filter, set, rename, drop, dedupe).
 * A path is written `userIdentity.type`; a segment that is not a plain name is quoted,
 * `additionalEventData."x-amz-id-2"` or `resources[0].ARN`. Paths are parsed once at create time
 * into segments, so the per-row cost is a plain property walk.
 */
import { PipeError } from '../errors.js';
import type { Row } from '../types.js';

export type FieldPath = readonly string[];

/** Names that reach an object's prototype: refused so that no path can read or pollute it. */
const FORBIDDEN = new Set(['__proto__', 'prototype', 'constructor']);

/** Throws PIPE_CONFIG_INVALID for a segment that would reach the prototype chain. */
export function checkSegment(seg: string, where: string, column?: number): string {
  if (FORBIDDEN.has(seg)) {
    const at = column === undefined ? '' : ` at column ${column}`;
    throw new PipeError('PIPE_CONFIG_INVALID', `${where}: "${seg}" cannot be used as a field name${at}`);
  }
  return seg;
}

const PLAIN = /[A-Za-z0-9_$@-]/;

/** Parses `a.b."c.d"[0]` into segments; throws PIPE_CONFIG_INVALID naming the column. */
export function parsePath(text: string, where = 'field path'): FieldPath {
  const segs: string[] = [];
  let i = 0;
  const fail = (msg: string): never => {
    throw new PipeError('PIPE_CONFIG_INVALID', `${where}: ${msg} at column ${i + 1} in "${text}"`);
  };
  if (text.length === 0) fail('empty path');
  for (;;) {
    const c = text[i];
    const column = i + 1;
    if (c === '"' || c === '`' || c === "'") {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail('unterminated quoted name');
      segs.push(text.slice(i + 1, end));
      i = end + 1;
    } else if (c === '[') {
      const end = text.indexOf(']', i);
      if (end < 0) fail('missing "]"');
      const inner = text.slice(i + 1, end).trim();
      const q = inner[0];
      if ((q === '"' || q === "'") && inner.endsWith(q) && inner.length >= 2) segs.push(inner.slice(1, -1));
      else if (/^\d+$/.test(inner)) segs.push(inner);
      else fail('expected an index or a quoted name inside "[]"');
      i = end + 1;
    } else {
      const start = i;
      while (i < text.length && PLAIN.test(text[i]!)) i++;
      if (i === start) fail(`unexpected "${c ?? ''}"`);
      segs.push(text.slice(start, i));
    }
    checkSegment(segs[segs.length - 1]!, where, column);
    if (i >= text.length) return segs;
    if (text[i] === '[') continue;
    if (text[i] !== '.') fail(`unexpected "${text[i]}"`);
    i++;
    if (i >= text.length) fail('path ends with "."');
  }
}

/** The value at a path, or undefined when any step is missing or not an object. */
export function getPath(row: unknown, path: FieldPath): unknown {
  let cur = row;
  for (let i = 0; i < path.length; i++) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[path[i]!];
  }
  // Inherited methods (`toString`) are not fields.
  return typeof cur === 'function' ? undefined : cur;
}

/** Whether the last step of the path exists as an own key (a null value counts as present). */
export function hasPath(row: unknown, path: FieldPath): boolean {
  const parent = getPath(row, path.slice(0, -1));
  return parent !== null && typeof parent === 'object' && Object.hasOwn(parent, path[path.length - 1]!);
}

/** Sets a value, creating intermediate objects; a non-object in the way is replaced. */
export function setPath(row: Row, path: FieldPath, value: unknown): void {
  let cur: Record<string, unknown> = row;
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i]!;
    const next = cur[seg];
    if (next === null || typeof next !== 'object') {
      const created: Record<string, unknown> = {};
      cur[seg] = created;
      cur = created;
    } else {
      cur = next as Record<string, unknown>;
    }
  }
  cur[path[path.length - 1]!] = value;
}

/** Deletes the key at a path; returns whether it was there. An array element is spliced out. */
export function deletePath(row: Row, path: FieldPath): boolean {
  const parent = getPath(row, path.slice(0, -1));
  if (parent === null || typeof parent !== 'object') return false;
  const key = path[path.length - 1]!;
  if (!Object.hasOwn(parent, key)) return false;
  if (Array.isArray(parent)) parent.splice(Number(key), 1);
  else delete (parent as Record<string, unknown>)[key];
  return true;
}

export function formatPath(path: FieldPath): string {
  return path.map((s, i) => (/^[A-Za-z_$@][A-Za-z0-9_$@-]*$/.test(s) ? (i ? '.' : '') + s : `["${s}"]`)).join('');
}

/** The fields every row carries; edits that would remove them are refused at create time. */
export const REQUIRED_FIELDS: ReadonlySet<string> = new Set(['_id', '_time', '_source']);
