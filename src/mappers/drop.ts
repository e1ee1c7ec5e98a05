/** `drop`: removes fields (names or paths) from every row. */
import { PipeError } from '../errors.js';
import { checkBy, NO_CONTEXT } from './common.js';
import type { ComponentSpec } from '../spec.js';
import type { ComponentContext, Mapper, Row } from '../types.js';
import { editablePath } from './edit.js';
import { deletePath, type FieldPath } from './path.js';

export const spec: ComponentSpec = {
  parallel: true,
  check: (options) => checkBy('fields', () => create(options, NO_CONTEXT)),
  kind: 'mapper',
  type: 'drop',
  summary: 'Removes fields from every row.',
  consumes: 'rows',
  options: {
    fields: {
      type: 'strings',
      required: true,
      description: 'Field names or paths to remove (`tlsDetails`, `userIdentity.accessKeyId`, `a."x.y"`). Missing ones are ignored.',
      example: ['tlsDetails', 'userIdentity.accessKeyId'],
    },
  },
};

/** Removes each path from the row in place. */
export function dropFields(row: Row, paths: readonly FieldPath[]): Row {
  for (const p of paths) deletePath(row, p);
  return row;
}

export function create(options: Record<string, unknown>, _ctx: ComponentContext): Mapper {
  const fields = options.fields;
  const list = typeof fields === 'string' ? [fields] : fields;
  if (!Array.isArray(list) || list.length === 0) throw new PipeError('PIPE_CONFIG_INVALID', 'drop fields: expected a list of field names');
  const paths = list.map((f, i) => editablePath(f, `drop fields[${i}]`));
  const artifactMapper = { map: (row: unknown) => dropFields(row as Row, paths) };
  return { forArtifact: () => artifactMapper };
}
