/**
 * `rename`: moves fields to new names or paths. All values are read before any is written, so
 * renames do not depend on their order and `{a: b, b: a}` swaps two fields.
 */
import { PipeError } from '../errors.js';
import { checkBy, NO_CONTEXT } from './common.js';
import type { ComponentSpec } from '../spec.js';
import type { ComponentContext, Mapper, Row } from '../types.js';
import { editablePath, objectOption } from './edit.js';
import { deletePath, getPath, hasPath, setPath, type FieldPath } from './path.js';

export const spec: ComponentSpec = {
  parallel: true,
  check: (options) => checkBy('fields', () => create(options, NO_CONTEXT)),
  kind: 'mapper',
  type: 'rename',
  summary: 'Renames fields (names or dotted paths); a field that is missing is left alone.',
  consumes: 'rows',
  options: {
    fields: {
      type: 'object',
      required: true,
      description: 'Mapping of old name or path to new name or path. An existing field at the new name is replaced.',
      example: { 'userIdentity.arn': 'principal', srcaddr: 'source_ip' },
    },
  },
};

export interface Rename {
  from: FieldPath;
  to: FieldPath;
}

export function renameFields(row: Row, renames: readonly Rename[]): Row {
  const moved: Array<[FieldPath, unknown]> = [];
  for (const r of renames) {
    if (hasPath(row, r.from)) moved.push([r.to, getPath(row, r.from)]);
  }
  if (moved.length === 0) return row;
  for (const r of renames) deletePath(row, r.from);
  for (const [to, value] of moved) setPath(row, to, value);
  return row;
}

export function create(options: Record<string, unknown>, _ctx: ComponentContext): Mapper {
  const fields = objectOption(options.fields, 'rename fields');
  const renames: Rename[] = Object.entries(fields).map(([from, to]) => ({
    from: editablePath(from, `rename fields.${from}`),
    to: editablePath(to, `rename fields.${from}`),
  }));
  const targets = new Set(renames.map((r) => r.to.join('\0')));
  if (targets.size !== renames.length) throw new PipeError('PIPE_CONFIG_INVALID', 'rename fields: two fields renamed to the same name');
  const artifactMapper = { map: (row: unknown) => renameFields(row as Row, renames) };
  return { forArtifact: () => artifactMapper };
}
