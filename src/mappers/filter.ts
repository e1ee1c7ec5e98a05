/**
 * `filter`: keeps the rows for which `where` is true and drops the others (counted as filtered).
 * The expression is compiled once at create time (see expr.ts), so a typo fails the configuration
 * before any work, with its column.
 */
import { PipeError } from '../errors.js';
import { checkBy, NO_CONTEXT } from './common.js';
import type { ComponentSpec } from '../spec.js';
import type { ComponentContext, Mapper, Row } from '../types.js';
import { compileExpression } from './expr.js';

export const spec: ComponentSpec = {
  parallel: true,
  check: (options) => checkBy('where', () => create(options, NO_CONTEXT)),
  kind: 'mapper',
  type: 'filter',
  summary: 'Keeps the rows for which an expression is true.',
  consumes: 'rows',
  options: {
    where: {
      type: 'string',
      required: true,
      description:
        'Expression over row fields: paths (`userIdentity.type`), literals, `== != < <= > >=`, `and or not` ' +
        '(`&& || !`), parentheses, `in [..]`, `=~ "regex"`, `!~`, `exists(field)`, `lower()`, `startsWith()`, ' +
        '`contains()`. Comparisons are strict: `dstport == 22` matches the number 22, not the string "22".',
      example: 'eventSource != "kms.amazonaws.com" and not (readOnly == true)',
    },
  },
};

export function create(options: Record<string, unknown>, _ctx: ComponentContext): Mapper {
  const where = options.where;
  if (typeof where !== 'string') throw new PipeError('PIPE_CONFIG_INVALID', 'filter where: expected a string');
  const keep = compileExpression(where, 'filter where');
  const artifactMapper = { map: (row: unknown) => (keep(row) ? (row as Row) : null) };
  return { forArtifact: () => artifactMapper };
}
