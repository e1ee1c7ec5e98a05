/** Option checks shared by set, rename and drop: paths parsed once, the row's own fields protected. */
import { PipeError } from '../errors.js';
import { formatPath, parsePath, REQUIRED_FIELDS, type FieldPath } from './path.js';

export function objectOption(value: unknown, where: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new PipeError('PIPE_CONFIG_INVALID', `${where}: expected a mapping of field names`);
  }
  if (Object.keys(value).length === 0) throw new PipeError('PIPE_CONFIG_INVALID', `${where}: no fields`);
  return value as Record<string, unknown>;
}

/**
 * Parses a path an edit removes or moves. `_id`, `_time` and `_source` are refused: every row
 * must keep them (the sink partitions by `_time`, dedupe keys on `_id`).
 */
export function editablePath(text: unknown, where: string): FieldPath {
  if (typeof text !== 'string') throw new PipeError('PIPE_CONFIG_INVALID', `${where}: expected a field name`);
  const path = parsePath(text, where);
  if (path.length === 1 && REQUIRED_FIELDS.has(path[0]!)) {
    throw new PipeError('PIPE_CONFIG_INVALID', `${where}: ${formatPath(path)} is a field every row must keep`);
  }
  return path;
}
