/**
 * The vpcflow fast path (ArtifactMapper.write): the JSON it writes for a line must be exactly
 * JSON.stringify of the row `map` returns, and whatever it does not write (errors, dropped lines,
 * headers) must be what `map` returns. Checked on every public VPC fixture and on generated lines
 * full of the tokens that need care (quotes, control characters, surrogates, leading zeros, numbers
 * past 2^53, `-`, NODATA).
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { create, vpcFlowJson, compileVpcFormat } from '../../src/mappers/vpcflow.js';
import { DEFAULT_VPC_FORMAT } from '../../src/mappers/vpcflow-fields.js';
import { WRITTEN, type LineSink } from '../../src/types.js';
import { agreeWrite, artifact, fakeContext, fixtureLines, prng } from './helpers.js';

const agree = (options: Record<string, unknown>, lines: string[], ref = artifact()) => agreeWrite(create(options, fakeContext()), lines, ref);

beforeEach(() => {
  // Lines without start or end take the time of reading: both paths must read the same clock.
  vi.useFakeTimers({ now: Date.UTC(2024, 2, 1, 12, 0, 0, 123), toFake: ['Date'] });
});

afterEach(() => {
  vi.useRealTimers();
});

const DIRS = ['public/aws-docs-vpc-user-guide', 'public/opentelemetry-collector-contrib'];
const FIXTURES = DIRS.flatMap((d) =>
  readdirSync(fileURLToPath(new URL(`../../fixtures/${d}/`, import.meta.url)))
    .filter((f) => f.endsWith('.log'))
    .map((f) => `${d}/${f}`),
);

describe('vpcflow write: the same JSON as map + JSON.stringify', () => {
  it('finds the public fixtures', () => {
    expect(FIXTURES.length).toBeGreaterThanOrEqual(12);
  });

  it.each(FIXTURES)('%s', (rel) => {
    for (const skipNoData of [false, true]) {
      const o = agree({ skipNoData }, fixtureLines(rel), artifact(`file:///data/${rel}`));
      // Every fixture has data lines after its first; the fast path must have taken some of them
      // (the too-few and too-many-fields files have none it can write, and the NODATA ones none
      // that skipNoData keeps).
      if (!/too_(few|many)/.test(rel) && !skipNoData) expect(o.written).toBeGreaterThan(0);
    }
  });

  it('headerless lines with a format option, and a URI that needs escaping', () => {
    const format = '${version} ${interface-id} ${srcaddr} ${dstaddr} ${start} ${end} ${log-status}';
    const lines = [
      '2 eni-1 10.0.0.1 10.0.0.2 1709251200 1709251260 OK',
      '2 eni-1 10.0.0.1 10.0.0.2 1709251200 1709251260 OK',
      '2 eni-2 - - - - NODATA',
      '5 eni-3 fe80::1 fe80::2 1709251300 - OK',
    ];
    const o = agree({ format }, lines, artifact('s3://b/"quoted"\\path\u0001.log', 'id "with" quotes'));
    expect(o.written).toBe(3);
  });

  const TOKENS = [
    '-', '0', '00', '007', '42', '1709251200', '999999999999999', '1234567890123456', '9007199254740991',
    '9007199254740992', '12345678901234567890', '12a', '+1', '-1', '1e3', 'a"b', 'a\\b', 'x\u0001y', 'x\u001fy',
    '\u007f', 'é', '\u2028', '\ud83d\ude00', '\ud800', 'a\udfffb', '\ufeffOK', 'NODATA', 'SKIPDATA', 'OK', 'ACCEPT',
  ];
  const SEPARATORS = [' ', ' ', ' ', '  ', '\t', ' \t '];

  it.each([false, true])('generated lines, every tricky token in every field (skipNoData %s)', (skipNoData) => {
    const rand = prng(7);
    const want = DEFAULT_VPC_FORMAT.length;
    const lines = ['version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status'];
    for (let n = 0; n < 4000; n++) {
      const count = rand() < 0.9 ? want : want + (rand() < 0.5 ? -1 : 1);
      const tokens: string[] = [];
      for (let k = 0; k < count; k++) tokens.push(rand() < 0.2 ? TOKENS[Math.floor(rand() * TOKENS.length)]! : String(Math.floor(rand() * 70000)));
      let line = rand() < 0.05 ? ' ' : '';
      tokens.forEach((t, k) => (line += (k ? SEPARATORS[Math.floor(rand() * SEPARATORS.length)] : '') + t));
      if (rand() < 0.05) line += rand() < 0.5 ? '\r' : '  ';
      lines.push(rand() < 0.02 ? '' : line);
    }
    const o = agree({ skipNoData }, lines);
    // Both paths are exercised: the fast one for most lines, the object one for the rest.
    expect(o.written).toBeGreaterThan(100);
    expect(o.mapped).toBeGreaterThan(100);
  });

  it('a format whose keys could not be written as they are leaves every line to map', () => {
    // compileVpcFormat is given names NAME would refuse; the fast path must decline them.
    const odd = compileVpcFormat(['version', '1st', 'srcaddr']);
    expect(odd.plainKeys).toBe(false);
    const twice = compileVpcFormat(['version', 'srcaddr', 'srcaddr']);
    expect(twice.plainKeys).toBe(false);
    expect(compileVpcFormat(DEFAULT_VPC_FORMAT).plainKeys).toBe(true);
  });

  it('vpcFlowJson hands anything unusual back (undefined) rather than guessing', () => {
    const format = compileVpcFormat(DEFAULT_VPC_FORMAT);
    const lines: string[] = [];
    const sink: LineSink = { line: (json) => lines.push(json), copy: () => expect.unreachable('vpcflow writes strings') };
    const good = '2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1709251200 1709251260 ACCEPT OK';
    expect(vpcFlowJson(format, good, false, sink, 'id', '"src"')).toBe(WRITTEN);
    expect(vpcFlowJson(format, '', false, sink, 'id', '"src"')).toBeUndefined();
    expect(vpcFlowJson(format, good.replace(' 443 ', ' 44x '), false, sink, 'id', '"src"')).toBeUndefined();
    expect(vpcFlowJson(format, `${good} extra`, false, sink, 'id', '"src"')).toBeUndefined();
    expect(vpcFlowJson(format, good.replace(' ACCEPT OK', ' ACCEPT'), false, sink, 'id', '"src"')).toBeUndefined();
    expect(vpcFlowJson(format, good.replace(' OK', ' NODATA'), true, sink, 'id', '"src"')).toBeNull();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ srcport: 443, action: 'ACCEPT', _time: '2024-03-01T00:00:00.000Z', _id: 'id', _source: 'src' });
  });
});
