/**
 * `set`: writes fields on every row. A string value may be a template: `{field.path}` is replaced
 * by that field of the row (`{{` and `}}` write literal braces). A value that is exactly one
 * placeholder keeps the field's type (a number stays a number; a missing field gives null). All
 * values are computed from the row as it arrived, then written, so the order of keys does not
 * matter. Setting `_time` normalises the value to ISO 8601 (epoch milliseconds or any date text).
 */
import { PipeError } from '../errors.js';
import { isoTime } from '../rows.js';
import { checkBy, NO_CONTEXT } from './common.js';
import type { ComponentSpec } from '../spec.js';
import type { ComponentContext, MapResult, Mapper, Row } from '../types.js';
import { RowError } from '../types.js';
import { objectOption } from './edit.js';
import { getPath, parsePath, setPath, type FieldPath } from './path.js';

export const spec: ComponentSpec = {
  parallel: true,
  check: (options) => checkBy('fields', () => create(options, NO_CONTEXT)),
  kind: 'mapper',
  type: 'set',
  summary: 'Sets fields on every row, to constants or to templates of other fields.',
  consumes: 'rows',
  options: {
    fields: {
      type: 'object',
      required: true,
      description:
        'Mapping of field name or path to value. Strings may hold `{field.path}` placeholders; a value that is one ' +
        'placeholder keeps its type. Non-string values are written as given.',
      example: { env: 'prod', principal: '{userIdentity.arn}', 'labels.route': '{srcaddr}->{dstaddr}' },
    },
  },
};

/** A compiled value: literal text pieces and field paths, or a constant. */
export type Template = { kind: 'const'; value: unknown } | { kind: 'field'; path: FieldPath } | { kind: 'text'; parts: Array<string | FieldPath> };

export function compileTemplate(text: string, where: string): Template {
  const parts: Array<string | FieldPath> = [];
  let lit = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if ((c === '{' || c === '}') && text[i + 1] === c) {
      lit += c;
      i++;
    } else if (c === '{') {
      const end = text.indexOf('}', i);
      if (end < 0) throw new PipeError('PIPE_CONFIG_INVALID', `${where}: "{" at column ${i + 1} is not closed (write "{{" for a brace)`);
      if (lit) parts.push(lit);
      lit = '';
      parts.push(parsePath(text.slice(i + 1, end).trim(), where));
      i = end;
    } else if (c === '}') {
      throw new PipeError('PIPE_CONFIG_INVALID', `${where}: "}" at column ${i + 1} has no "{" (write "}}" for a brace)`);
    } else {
      lit += c;
    }
  }
  if (lit) parts.push(lit);
  if (parts.length === 1 && typeof parts[0] !== 'string') return { kind: 'field', path: parts[0]! };
  if (parts.every((p) => typeof p === 'string')) return { kind: 'const', value: parts.join('') };
  return { kind: 'text', parts };
}

function textOf(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

export function renderTemplate(t: Template, row: Row): unknown {
  switch (t.kind) {
    case 'const':
      // Objects are copied so that rows never share (and later edit) one instance.
      return t.value !== null && typeof t.value === 'object' ? structuredClone(t.value) : t.value;
    case 'field': {
      const v = getPath(row, t.path);
      return v === undefined ? null : v;
    }
    default: {
      let s = '';
      for (const p of t.parts) s += typeof p === 'string' ? p : textOf(getPath(row, p));
      return s;
    }
  }
}

export interface Assignment {
  path: FieldPath;
  value: Template;
}

export function setFields(row: Row, assignments: readonly Assignment[]): Row | RowError {
  const values = assignments.map((a) => renderTemplate(a.value, row));
  for (let i = 0; i < assignments.length; i++) {
    const { path } = assignments[i]!;
    let v = values[i];
    if (path.length === 1 && path[0] === '_time') {
      const iso = isoTime(v);
      if (iso === undefined) return new RowError('PIPE_ROW_INVALID', `set _time: ${JSON.stringify(v)} is not a valid time`);
      v = iso;
    }
    setPath(row, path, v);
  }
  return row;
}

export function create(options: Record<string, unknown>, _ctx: ComponentContext): Mapper {
  const fields = objectOption(options.fields, 'set fields');
  const assignments: Assignment[] = Object.entries(fields).map(([name, value]) => ({
    path: parsePath(name, `set fields.${name}`),
    value: typeof value === 'string' ? compileTemplate(value, `set fields.${name}`) : { kind: 'const', value },
  }));
  const artifactMapper = { map: (row: unknown): MapResult => setFields(row as Row, assignments) };
  return { forArtifact: () => artifactMapper };
}
