import { describe, expect, it } from 'vitest';
import { compileExpression } from '../../src/mappers/expr.js';
import { create, spec } from '../../src/mappers/filter.js';
import { create as createVpc } from '../../src/mappers/vpcflow.js';
import { create as createCloudTrail } from '../../src/mappers/cloudtrail.js';
import { artifact, fakeContext, fixtureJson, fixtureLines, run } from './helpers.js';

const row = {
  eventSource: 'kms.amazonaws.com',
  eventName: 'Decrypt',
  readOnly: true,
  errorCode: null,
  userIdentity: { type: 'AssumedRole', sessionContext: { attributes: { mfaAuthenticated: 'false' } } },
  resources: [{ ARN: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd', type: 'AWS::KMS::Key' }],
  additionalEventData: { 'x-amz-id-2': 'abc', bytesTransferredIn: 576 },
  dstport: 22,
  srcport: 20641,
  action: 'ACCEPT',
  tags: ['a', 'b'],
  in: 'kw-field',
  'odd name': 1,
  'dotted.key': 'yes',
  _time: '2024-03-01T00:00:00.000Z',
};

const cases: Array<[string, boolean]> = [
  // equality is strict about types; a missing field equals null
  ['eventSource == "kms.amazonaws.com"', true],
  ["eventSource != 'kms.amazonaws.com'", false],
  ['dstport == 22', true],
  ['dstport == "22"', false],
  ['readOnly == true', true],
  ['missing == null', true],
  ['missing != null', false],
  ['errorCode == null', true],
  // ordering: two numbers or two strings, else false
  ['dstport < 1024', true],
  ['dstport >= 22', true],
  ['dstport > 22', false],
  ['srcport <= 20641', true],
  ['dstport < "100"', false],
  ['dstport > "100"', false],
  ['_time >= "2024-01-01"', true],
  ['_time < "2024-03-01T00:00:00.000Z"', false],
  ['srcport > -1', true],
  ['additionalEventData.bytesTransferredIn > 5.5e2', true],
  // paths
  ['userIdentity.type == "AssumedRole"', true],
  ['userIdentity.sessionContext.attributes.mfaAuthenticated == "false"', true],
  ['resources[0].type == "AWS::KMS::Key"', true],
  ['resources[1].type == null', true],
  ['additionalEventData.`x-amz-id-2` == "abc"', true],
  ['additionalEventData["x-amz-id-2"] == "abc"', true],
  ['`odd name` == 1', true],
  ['`in` == "kw-field"', true],
  ['`dotted.key` == "yes"', true],
  ['eventName.length == null', true],
  ['toString == null', true],
  // truthiness and exists
  ['readOnly', true],
  ['not readOnly', false],
  ['!readOnly', false],
  ['errorCode', false],
  ['exists(errorCode)', true],
  ['exists(missing)', false],
  ['exists(userIdentity.type) and not exists(userIdentity.userName)', true],
  // membership
  ['action in ["ACCEPT", "REJECT"]', true],
  ['action not in ["ACCEPT"]', false],
  ['action NOT IN ["REJECT"]', true],
  ['dstport in [22, 443]', true],
  ['dstport in ["22"]', false],
  ['missing in [null]', true],
  ['"b" in tags', true],
  ['"z" in tags', false],
  ['action in [lower("accept"), upper("accept")]', true],
  // regular expressions
  ['eventName =~ "^Dec"', true],
  ['eventName =~ /^dec/i', true],
  ['eventName !~ "^Dec"', false],
  ['resources[0].ARN =~ /^arn:aws:kms:[a-z0-9-]+:\\d{12}:key\\//', true],
  ['dstport =~ "^2"', true],
  ['missing =~ ".*"', false],
  ['missing !~ "x"', true],
  // precedence: not > and > or; parentheses override
  ['true or false and false', true],
  ['(true or false) and false', false],
  ['not false and false', false],
  ['not (false and false)', true],
  ['false or not false', true],
  ['true || false && false', true],
  ['!(dstport == 22) || action == "ACCEPT" && dstport != 22', false],
  ['dstport == 22 AND action == "ACCEPT"', true],
  ['eventSource == "kms.amazonaws.com" and (eventName == "Encrypt" or eventName == "Decrypt")', true],
  ['eventSource == "kms.amazonaws.com" and eventName == "Encrypt" or eventName == "Decrypt"', true],
  ['eventSource == "s3.amazonaws.com" and (eventName == "Encrypt" or eventName == "Decrypt")', false],
  // functions
  ['lower(eventName) == "decrypt"', true],
  ['upper(action) == "ACCEPT"', true],
  ['startsWith(eventSource, "kms.")', true],
  ['endsWith(eventSource, ".com")', true],
  ['contains(eventName, "cry")', true],
  ['contains(tags, "a")', true],
  ['contains(tags, "c")', false],
  ['len(tags) == 2', true],
  ['len(eventName) == 7', true],
  ['len(dstport) == null', true],
  // literals and escapes
  ['"a\\"b" == \'a"b\'', true],
  ['"\\u00e9" == "é"', true],
  ['[1, 2] == [1, 2]', false],
];

describe('filter expressions', () => {
  it.each(cases)('%s → %s', (text, expected) => {
    expect(compileExpression(text)(row)).toBe(expected);
  });

  it('never throws on odd data', () => {
    const p = compileExpression('userIdentity.type == "Root" or len(x) > 1 or x =~ "a" or contains(x, 1)');
    for (const v of [null, undefined, 42, 'text', [], { userIdentity: 'flat' }, { x: { y: 1 } }]) expect(p(v)).toBe(false);
  });

  const errors: Array<[string, string]> = [
    ['eventSource = "x"', 'unexpected "=" at column 13'],
    ['eventSource ==', 'unexpected end of expression (expected a field, a literal or "(") at column 15'],
    ['(a == 1', 'unexpected end of expression (expected ")") at column 8'],
    ['a == 1)', 'unexpected ")" at column 7'],
    ['a == "x', 'unterminated string at column 6'],
    ['a =~ "("', 'invalid regular expression /(/: Unterminated group at column 6'],
    ['a =~ /x', 'unterminated regular expression at column 6'],
    ['a =~ 5', 'unexpected "5" (expected a regular expression: a string or /re/flags) at column 6'],
    ['a in', 'unexpected end of expression (expected a field, a literal or "(") at column 5'],
    ['a in [1, 2', 'unexpected end of expression (expected "," or "]") at column 11'],
    ['foo(a)', 'unknown function foo() at column 1'],
    ['lower(a, b)', 'lower() takes 1 argument, got 2 at column 1'],
    ['exists("a")', 'unexpected string "a" (expected a field name) at column 8'],
    ['', 'empty expression at column 1'],
    ['a == 1 == 2', 'unexpected "==" at column 8'],
    ['a and', 'unexpected end of expression (expected a field, a literal or "(") at column 6'],
    ['and == 1', 'unexpected "and" (a keyword; quote a field of that name with backticks) at column 1'],
    ['12abc == 1', 'malformed number "12a" at column 1'],
    ['a # b', 'unexpected "#" at column 3'],
    ['a.', 'unexpected end of expression (expected a field name) at column 3'],
    ['a[x] == 1', 'unexpected "x" (expected an index or a quoted name) at column 3'],
    ['__proto__.polluted == 1', '"__proto__" cannot be used as a field name at column 1'],
    ['a.constructor == 1', '"constructor" cannot be used as a field name at column 3'],
  ];

  it.each(errors)('%j is a configuration error: %s', (text, message) => {
    expect(() => compileExpression(text, 'filter where')).toThrow(
      expect.objectContaining({ name: 'PipeError', code: 'PIPE_CONFIG_INVALID', message: `filter where: ${message}` }),
    );
  });
});

describe('filter mapper', () => {
  it('drops the rows for which where is false', () => {
    const chain = [createVpc({}, fakeContext()), create({ where: 'action == "REJECT"' }, fakeContext())];
    const out = run(chain, fixtureLines('public/aws-docs-vpc-user-guide/aws-docs-vpcflow-accepted-rejected.log'));
    expect(out.rows.map((r) => r.dstport)).toEqual([3389]);
    expect(out.filtered).toBe(2);
  });

  it('filters CloudTrail rows fanned out of one document', () => {
    const chain = [createCloudTrail({}, fakeContext()), create({ where: 'eventType != "AwsCloudTrailInsight" and userIdentity.type == "IAMUser"' }, fakeContext())];
    const out = run(chain, [fixtureJson('public/opentelemetry-collector-contrib/cloudtrail_log.json')], artifact());
    expect(out.rows.map((r) => r.eventName)).toEqual(['StartInstances', 'CreateUser', 'UpdateTrail']);
    expect(out.filtered).toBe(4);
  });

  it('fails at create time with the column of a syntax error', () => {
    expect(() => create({ where: 'eventSource = "kms"' }, fakeContext())).toThrow(
      expect.objectContaining({ code: 'PIPE_CONFIG_INVALID', message: 'filter where: unexpected "=" at column 13' }),
    );
    expect(() => create({}, fakeContext())).toThrow(expect.objectContaining({ code: 'PIPE_CONFIG_INVALID' }));
  });

  it('has a spec whose example compiles', () => {
    expect(spec).toMatchObject({ kind: 'mapper', type: 'filter', consumes: 'rows', options: { where: { type: 'string', required: true } } });
    expect(compileExpression(spec.options.where!.example as string)({ eventSource: 's3.amazonaws.com', readOnly: false })).toBe(true);
  });
});
