import { describe, expect, it } from 'vitest';
import { expandVariables } from '../../src/config/expand.js';

describe('expandVariables', () => {
  const env = { BUCKET: 'trail', EMPTY: '', NESTED: '${BUCKET}' };

  it.each([
    ['${BUCKET}', 'trail', true],
    ['s3://${BUCKET}/logs', 's3://trail/logs', true],
    ['${MISSING:-us-east-1}', 'us-east-1', true],
    ['${EMPTY:-fallback}', 'fallback', true],
    ['${EMPTY}', '', true],
    ['${MISSING:-}', '', true],
    ['$${version} $${account-id}', '${version} ${account-id}', false],
    ['${NESTED}', '${BUCKET}', true],
    ['cost: $5 and $$5', 'cost: $5 and $$5', false],
    ['${MISSING:-a:-b}', 'a:-b', true],
    ['plain', 'plain', false],
  ])('%s → %s', (text, value, substituted) => {
    expect(expandVariables(text, env)).toEqual({ value, substituted, problems: [] });
  });

  it('names an unset variable without a default', () => {
    expect(expandVariables('${A}/${BUCKET}/${B}', env).problems).toEqual([
      'variable A is not set and has no default (write ${A:-default} to give one)',
      'variable B is not set and has no default (write ${B:-default} to give one)',
    ]);
  });

  it.each([
    ['${BUCKET', "'${' without a closing '}' (write $${ for a literal ${)"],
    ['${account-id}', "'${account-id}' is not a variable reference: names are letters, digits and _ (write $${ for a literal ${)"],
    ['${A:-${B}}', 'the default of ${A} cannot contain another ${…} reference'],
  ])('reports %s', (text, problem) => {
    expect(expandVariables(text, env).problems).toEqual([problem]);
  });
});
