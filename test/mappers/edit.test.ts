import { describe, expect, it } from 'vitest';
import { create as createDrop } from '../../src/mappers/drop.js';
import { create as createRename } from '../../src/mappers/rename.js';
import { compileTemplate, create as createSet, renderTemplate } from '../../src/mappers/set.js';
import { create as createVpc } from '../../src/mappers/vpcflow.js';
import { create as createCloudTrail } from '../../src/mappers/cloudtrail.js';
import { parsePath } from '../../src/mappers/path.js';
import { RowError, type Row } from '../../src/types.js';
import { fakeContext, fixtureJson, fixtureLines, run } from './helpers.js';

const ctx = fakeContext();
const mapOne = (m: { forArtifact: (a: never) => { map: (v: unknown, c: never) => unknown } }, row: Row) =>
  m.forArtifact({ identity: 'i', uri: 'u' } as never).map(row, { seq: 0 } as never);

function sample(): Row {
  return {
    _id: 'id-1', _time: '2024-03-01T00:00:00.000Z', _source: 'file:///x',
    srcaddr: '10.0.0.1', dstaddr: '10.0.0.2', dstport: 443, action: 'ACCEPT',
    userIdentity: { type: 'IAMUser', arn: 'arn:aws:iam::111122223333:user/Mary' },
    tags: ['a'], 'x.y': 'dotted', epoch: 1709251200000,
  };
}

describe('set', () => {
  it.each<[Record<string, unknown>, Record<string, unknown>]>([
    [{ env: 'prod' }, { env: 'prod' }],
    [{ principal: '{userIdentity.arn}' }, { principal: 'arn:aws:iam::111122223333:user/Mary' }],
    [{ port: '{dstport}' }, { port: 443 }],
    [{ port: 'p{dstport}' }, { port: 'p443' }],
    [{ route: '{srcaddr}->{dstaddr}:{dstport}' }, { route: '10.0.0.1->10.0.0.2:443' }],
    [{ missing: '{nope}' }, { missing: null }],
    [{ missing: 'x={nope}' }, { missing: 'x=' }],
    [{ obj: 'id {userIdentity}' }, { obj: 'id {"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/Mary"}' }],
    [{ braces: '{{literal}} }}' }, { braces: '{literal} }' }],
    [{ 'labels.team': 'net', 'labels.tier': 1 }, { labels: { team: 'net', tier: 1 } }],
    [{ 'userIdentity.kind': '{userIdentity.type}' }, { userIdentity: { type: 'IAMUser', arn: 'arn:aws:iam::111122223333:user/Mary', kind: 'IAMUser' } }],
    [{ 'action.code': 1 }, { action: { code: 1 } }],
    [{ flag: true, none: null, count: 0 }, { flag: true, none: null, count: 0 }],
    [{ dotted: '{"x.y"}' }, { dotted: 'dotted' }],
    // values are computed from the row as it arrived: the order of keys does not matter
    [{ dstport: 80, was: '{dstport}' }, { dstport: 80, was: 443 }],
    [{ _time: '{epoch}' }, { _time: '2024-03-01T00:00:00.000Z' }],
    [{ _time: '2024-03-01 12:30:00Z' }, { _time: '2024-03-01T12:30:00.000Z' }],
  ])('%j', (fields, expected) => {
    const row = mapOne(createSet({ fields }, ctx), sample()) as Row;
    expect(row).toMatchObject(expected);
    expect(row._id).toBe('id-1');
  });

  it('gives each row its own copy of an object value', () => {
    const m = createSet({ fields: { meta: { tags: ['x'] } } }, ctx);
    const a = mapOne(m, sample()) as Row;
    const b = mapOne(m, sample()) as Row;
    (a.meta as { tags: string[] }).tags.push('y');
    expect(b.meta).toEqual({ tags: ['x'] });
  });

  it('makes a bad _time a row error', () => {
    const r = mapOne(createSet({ fields: { _time: '{srcaddr}' } }, ctx), sample());
    expect(r).toBeInstanceOf(RowError);
    expect((r as RowError).message).toBe('set _time: "10.0.0.1" is not a valid time');
  });

  it.each<[unknown, string]>([
    [{ a: '{unclosed' }, 'set fields.a: "{" at column 1 is not closed (write "{{" for a brace)'],
    [{ a: 'x } y' }, 'set fields.a: "}" at column 3 has no "{" (write "}}" for a brace)'],
    [{ a: '{a..b}' }, 'set fields.a: unexpected "." at column 3 in "a..b"'],
    [{ '__proto__.polluted': 1 }, 'set fields.__proto__.polluted: "__proto__" cannot be used as a field name at column 1'],
    [{}, 'set fields: no fields'],
    [['a'], 'set fields: expected a mapping of field names'],
  ])('rejects %j at create time', (fields, message) => {
    expect(() => createSet({ fields }, ctx)).toThrow(expect.objectContaining({ code: 'PIPE_CONFIG_INVALID', message }));
  });

  it('compiles templates to constants, single fields or text', () => {
    expect(compileTemplate('plain', 'w')).toEqual({ kind: 'const', value: 'plain' });
    expect(compileTemplate('{ a.b }', 'w')).toEqual({ kind: 'field', path: ['a', 'b'] });
    expect(renderTemplate(compileTemplate('{a}-{b}', 'w'), { a: 1, b: null })).toBe('1-');
  });
});

describe('rename', () => {
  it.each<[Record<string, unknown>, Record<string, unknown>, Array<string | string[]>]>([
    [{ srcaddr: 'source_ip' }, { source_ip: '10.0.0.1' }, ['srcaddr']],
    [{ 'userIdentity.arn': 'principal' }, { principal: 'arn:aws:iam::111122223333:user/Mary', userIdentity: { type: 'IAMUser' } }, ['userIdentity.arn']],
    [{ dstport: 'net.port' }, { net: { port: 443 } }, ['dstport']],
    [{ srcaddr: 'dstaddr', dstaddr: 'srcaddr' }, { srcaddr: '10.0.0.2', dstaddr: '10.0.0.1' }, []],
    [{ nope: 'other' }, { srcaddr: '10.0.0.1' }, ['other', 'nope']],
    [{ '"x.y"': 'xy' }, { xy: 'dotted' }, [['x.y']]],
    [{ action: 'dstport' }, { dstport: 'ACCEPT' }, ['action']],
  ])('%j', (fields, expected, absent) => {
    const row = mapOne(createRename({ fields }, ctx), sample()) as Row;
    expect(row).toMatchObject(expected);
    for (const p of absent) expect(row).not.toHaveProperty(p);
    expect(row).toMatchObject({ _id: 'id-1', _time: '2024-03-01T00:00:00.000Z' });
  });

  it('keeps a null value when moving it', () => {
    const row = mapOne(createRename({ fields: { a: 'b' } }, ctx), { ...sample(), a: null }) as Row;
    expect(row).toHaveProperty('b', null);
    expect(row).not.toHaveProperty('a');
  });

  it.each<[unknown, string]>([
    [{ _id: 'id' }, 'rename fields._id: _id is a field every row must keep'],
    [{ a: '_time' }, 'rename fields.a: _time is a field every row must keep'],
    [{ a: 1 }, 'rename fields.a: expected a field name'],
    [{ a: 'c', b: 'c' }, 'rename fields: two fields renamed to the same name'],
  ])('rejects %j at create time', (fields, message) => {
    expect(() => createRename({ fields }, ctx)).toThrow(expect.objectContaining({ code: 'PIPE_CONFIG_INVALID', message }));
  });
});

describe('drop', () => {
  it.each<[string[], string[], Record<string, unknown>]>([
    [['tags'], ['tags'], { srcaddr: '10.0.0.1' }],
    [['userIdentity.arn', 'nope', 'nope.deeper'], [], { userIdentity: { type: 'IAMUser' } }],
    [['"x.y"', 'epoch'], ['x.y', 'epoch'], { action: 'ACCEPT' }],
    [['tags[0]'], [], { tags: [] }],
  ])('%j', (fields, absent, expected) => {
    const row = mapOne(createDrop({ fields }, ctx), sample()) as Row;
    for (const k of absent) expect(row).not.toHaveProperty([k]);
    expect(row).toMatchObject(expected);
    expect(row).toMatchObject({ _id: 'id-1', _source: 'file:///x' });
  });

  it('drops userIdentity.arn only', () => {
    const row = mapOne(createDrop({ fields: ['userIdentity.arn'] }, ctx), sample()) as Row;
    expect(row.userIdentity).toEqual({ type: 'IAMUser' });
  });

  it.each<[unknown, string]>([
    [['_source'], 'drop fields[0]: _source is a field every row must keep'],
    [[], 'drop fields: expected a list of field names'],
    [['a', ''], 'drop fields[1]: empty path at column 1 in ""'],
  ])('rejects %j at create time', (fields, message) => {
    expect(() => createDrop({ fields }, ctx)).toThrow(expect.objectContaining({ code: 'PIPE_CONFIG_INVALID', message }));
  });
});

describe('field edits in a chain', () => {
  it('vpcflow → rename → set → drop', () => {
    const chain = [
      createVpc({}, ctx),
      createRename({ fields: { srcaddr: 'source.ip', dstaddr: 'destination.ip' } }, ctx),
      createSet({ fields: { 'event.outcome': '{action}', summary: '{source.ip} → {destination.ip}' } }, ctx),
      createDrop({ fields: ['version', 'log_status', 'account_id'] }, ctx),
    ];
    const out = run(chain, fixtureLines('public/aws-docs-vpc-user-guide/aws-docs-vpcflow-accepted-rejected.log'));
    expect(out.rows).toHaveLength(2);
    expect(out.rows[1]).toMatchObject({
      source: { ip: '172.31.9.69' }, destination: { ip: '172.31.9.12' }, event: { outcome: 'REJECT' }, summary: '172.31.9.69 → 172.31.9.12', dstport: 3389,
    });
    expect(out.rows[1]).not.toHaveProperty('version');
    expect(out.rows[1]).not.toHaveProperty('srcaddr');
  });

  it('cloudtrail → set on every fanned-out event', () => {
    const chain = [createCloudTrail({}, ctx), createSet({ fields: { who: '{userIdentity.type}:{userIdentity.userName}' } }, ctx)];
    const out = run(chain, [fixtureJson('cloudtrail/identity-types.json')]);
    expect(out.rows.map((r) => r.who)).toEqual(['Root:', 'FederatedUser:', 'AWSAccount:', 'SAMLUser:SamlExample', 'WebIdentityUser:user-id', 'IAMUser:José-Müller']);
  });
});

describe('paths', () => {
  it.each<[string, string[]]>([
    ['a', ['a']],
    ['a.b-c.d_e', ['a', 'b-c', 'd_e']],
    ['a."x.y".z', ['a', 'x.y', 'z']],
    ["a['x y'][2]", ['a', 'x y', '2']],
    ['`weird name`', ['weird name']],
  ])('%s', (text, segs) => {
    expect(parsePath(text)).toEqual(segs);
  });
});
