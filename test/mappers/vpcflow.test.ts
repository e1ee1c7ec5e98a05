import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { positionId } from '../../src/rows.js';
import { RowError } from '../../src/types.js';
import { compileVpcFormat, create, mapVpcFlowLine, parseVpcFormat, spec } from '../../src/mappers/vpcflow.js';
import { DEFAULT_VPC_FORMAT, headerFields, VPC_FIELDS } from '../../src/mappers/vpcflow-fields.js';
import type { ArtifactRef } from '../../src/types.js';
import { agreeWrite, artifact, fakeContext, fixtureLines, run } from './helpers.js';

const DOCS = 'public/aws-docs-vpc-user-guide/';
const OTEL = 'public/opentelemetry-collector-contrib/';
const NOW = new Date('2030-01-02T03:04:05.678Z');

function mapper(options: Record<string, unknown> = {}) {
  return create({ skipNoData: false, ...options }, fakeContext());
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW);
});
afterEach(() => {
  vi.useRealTimers();
});

interface FileCase {
  file: string;
  fields: number;
  rows: number;
  expect: Array<[number, Record<string, unknown>]>;
}

const files: FileCase[] = [
  {
    file: `${DOCS}aws-docs-vpcflow-accepted-rejected.log`, fields: 14, rows: 2,
    expect: [
      [0, { version: 2, account_id: '123456789010', interface_id: 'eni-1235b8ca123456789', srcaddr: '172.31.16.139', dstaddr: '172.31.16.21', srcport: 20641, dstport: 22, protocol: 6, packets: 20, bytes: 4249, start: 1418530010, end: 1418530070, action: 'ACCEPT', log_status: 'OK', _time: '2014-12-14T04:06:50.000Z' }],
      [1, { srcaddr: '172.31.9.69', dstaddr: '172.31.9.12', srcport: 49761, dstport: 3389, action: 'REJECT', log_status: 'OK' }],
    ],
  },
  {
    file: `${DOCS}aws-docs-vpcflow-nodata-skipdata.log`, fields: 14, rows: 2,
    expect: [
      [0, { version: 2, interface_id: 'eni-1235b8ca123456789', srcaddr: null, dstaddr: null, srcport: null, dstport: null, protocol: null, packets: null, bytes: null, action: null, log_status: 'NODATA', start: 1431280876, _time: '2015-05-10T18:01:16.000Z' }],
      [1, { interface_id: 'eni-11111111aaaaaaaaa', srcaddr: null, bytes: null, log_status: 'SKIPDATA', end: 1431280934 }],
    ],
  },
  {
    file: `${DOCS}aws-docs-vpcflow-sg-nacl-icmp.log`, fields: 14, rows: 2,
    expect: [
      [0, { srcaddr: '203.0.113.12', dstaddr: '172.31.16.139', srcport: 0, dstport: 0, protocol: 1, packets: 4, bytes: 336, action: 'ACCEPT', _time: '2015-05-29T16:30:27.000Z' }],
      [1, { srcaddr: '172.31.16.139', action: 'REJECT', start: 1432917094, _time: '2015-05-29T16:31:34.000Z' }],
    ],
  },
  {
    file: `${DOCS}aws-docs-vpcflow-ipv6.log`, fields: 14, rows: 1,
    expect: [[0, { srcaddr: '2001:db8:1234:a100:8d6e:3477:df66:f105', dstaddr: '2001:db8:1234:a102:3304:8879:34cf:4071', srcport: 34892, dstport: 22, packets: 54, bytes: 8855, _time: '2016-10-31T11:35:08.000Z' }]],
  },
  {
    file: `${DOCS}aws-docs-vpcflow-tcp-flags-v3.log`, fields: 21, rows: 8,
    expect: [
      [0, { version: 3, vpc_id: 'vpc-abcdefab012345678', subnet_id: 'subnet-aaaaaaaa012345678', instance_id: 'i-01234567890123456', type: 'IPv4', pkt_srcaddr: '52.213.180.42', bytes: 568, packets: 8, tcp_flags: 2, _time: '2019-08-26T19:47:55.000Z' }],
      [1, { tcp_flags: 18 }],
      [4, { tcp_flags: 1, bytes: 63388, packets: 1219, start: 1566848933 }],
      [5, { bytes: 23294588, packets: 15774 }],
      [6, { tcp_flags: 3 }],
      // The line with a double space: whitespace runs split it into 21 fields, not 22.
      [7, { srcport: 5001, dstport: 43638, pkt_srcaddr: '10.0.0.62', pkt_dstaddr: '52.213.180.42', protocol: 6, bytes: 967, packets: 14, tcp_flags: 19, log_status: 'OK', _time: '2019-08-27T19:12:13.000Z' }],
    ],
  },
  {
    // No version, start or end field: _time is the time of reading.
    file: `${DOCS}aws-docs-vpcflow-nat-gateway.log`, fields: 6, rows: 6,
    expect: [
      [0, { instance_id: null, interface_id: 'eni-1235b8ca123456789', srcaddr: '10.0.1.5', dstaddr: '10.0.0.220', pkt_srcaddr: '10.0.1.5', pkt_dstaddr: '203.0.113.5', _time: NOW.toISOString() }],
      [3, { instance_id: null, srcaddr: '10.0.0.220', pkt_srcaddr: '203.0.113.5', pkt_dstaddr: '10.0.1.5' }],
      [4, { instance_id: 'i-01234567890123456', interface_id: 'eni-1111aaaa2222bbbb3' }],
    ],
  },
  {
    file: `${DOCS}aws-docs-vpcflow-transit-gateway-v3.log`, fields: 17, rows: 4,
    expect: [
      [0, { version: 3, interface_id: 'eni-33333333333333333', instance_id: 'i-01234567890123456', srcport: 39812, dstport: 80, tcp_flags: 3, type: 'IPv4', _time: NOW.toISOString() }],
      [2, { instance_id: null, subnet_id: 'subnet-11111111aaaaaaaaa', pkt_srcaddr: '10.20.33.164', srcaddr: '10.40.1.175' }],
      [3, { instance_id: null, tcp_flags: 19 }],
    ],
  },
  {
    file: `${DOCS}aws-docs-vpcflow-traffic-path-v5.log`, fields: 29, rows: 2,
    expect: [
      [0, { version: 5, account_id: '123456789012', region: 'ap-southeast-2', az_id: 'apse2-az3', sublocation_type: null, sublocation_id: null, tcp_flags: 19, pkt_src_aws_service: 'S3', pkt_dst_aws_service: null, traffic_path: null, flow_direction: 'ingress', _time: '2021-03-26T03:28:12.000Z' }],
      [1, { pkt_src_aws_service: null, pkt_dst_aws_service: 'S3', traffic_path: 8, flow_direction: 'egress', packets: 7, bytes: 471 }],
    ],
  },
  {
    file: `${OTEL}valid_vpc_flow_log.log`, fields: 14, rows: 1,
    expect: [[0, { account_id: '12345678910', interface_id: 'eni-0eb1e4178af74336c', srcaddr: null, log_status: 'NODATA', _time: '2025-03-21T15:14:49.000Z' }]],
  },
  {
    file: `${OTEL}valid_vpc_flow_log_multi.log`, fields: 14, rows: 2,
    expect: [[0, { dstport: 22, action: 'ACCEPT' }], [1, { dstport: 3389, action: 'REJECT', log_status: 'OK' }]],
  },
  {
    file: `${OTEL}valid_vpc_flow_log_ecs.log`, fields: 24, rows: 1,
    expect: [[0, {
      version: 5, srcport: 49152, ecs_cluster_arn: 'arn:aws:ecs:us-east-1:123456789012:cluster/my-cluster', ecs_cluster_name: 'my-cluster',
      ecs_container_instance_arn: 'arn:aws:ecs:us-east-1:123456789012:container-instance/my-cluster/abcdef', ecs_container_instance_id: 'abcdef1234567890',
      ecs_container_id: 'container-1', ecs_second_container_id: 'container-2', ecs_service_name: 'my-service',
      ecs_task_definition_arn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/my-task:1',
      ecs_task_arn: 'arn:aws:ecs:us-east-1:123456789012:task/my-cluster/abcdef', ecs_task_id: 'abcdef1234567890', _time: '2023-11-14T22:13:20.000Z',
    }]],
  },
  {
    file: `${OTEL}valid_tgw_flow_log.log`, fields: 31, rows: 1,
    expect: [[0, {
      version: 6, account_id: '123456789012', tgw_id: 'tgw-0abc12345def67890', tgw_attachment_id: 'tgw-attach-0abc12345def67890',
      tgw_src_vpc_id: 'vpc-0abc12345def67890', tgw_dst_vpc_id: 'vpc-0def12345abc67890', tgw_src_eni: 'eni-0abc12345def67890', tgw_src_az_id: 'use1-az1',
      tgw_dst_az_id: 'use1-az2', tgw_pair_attachment_id: 'tgw-attach-0def12345abc67890', packets_lost_no_route: 1, packets_lost_blackhole: 2,
      packets_lost_mtu_exceeded: 3, packets_lost_ttl_expired: 4, packets: 10, bytes: 1000, log_status: 'OK', type: 'IPv4', tcp_flags: 2,
      flow_direction: 'ingress', region: 'us-east-1', _time: '2023-11-14T22:13:20.000Z',
    }]],
  },
];

describe('vpcflow: every sample file', () => {
  it.each(files.map((f) => ({ ...f, name: f.file.split('/').pop() })))('$name', ({ file, fields, rows, expect: checks }) => {
    const lines = fixtureLines(file);
    const ref = artifact(`s3://flow-bucket/${file}`);
    const out = run([mapper()], lines, ref);
    expect(out.errors).toEqual([]);
    expect(out.rows).toHaveLength(rows);
    expect(out.filtered).toBe(1); // the header line
    for (const row of out.rows) {
      expect(Object.keys(row)).toHaveLength(fields + 3);
      expect(row._source).toBe(ref.uri);
    }
    out.rows.forEach((row, i) => expect(row._id).toBe(positionId(ref.identity, i + 1)));
    for (const [i, partial] of checks) expect(out.rows[i]).toMatchObject(partial);
  });
});

describe('vpcflow: field count mismatches are row errors, never guesses', () => {
  it.each([
    ['vpc_flow_log_too_few_fields.log', 'expected 14 fields, got 13'],
    ['vpc_flow_log_too_many_fields.log', 'expected 14 fields, got 15'],
  ])('%s', (file, message) => {
    const out = run([mapper()], fixtureLines(`${OTEL}${file}`));
    expect(out.rows).toEqual([]);
    expect(out.errors).toHaveLength(1);
    expect(out.errors[0]!.seq).toBe(1);
    expect(out.errors[0]!.error.code).toBe('PIPE_ROW_INVALID');
    expect(out.errors[0]!.error.message).toBe(`vpcflow: ${message}`);
    expect(out.errors[0]!.error.raw).toBe(fixtureLines(`${OTEL}${file}`)[1]);
  });

  it('goes on with the artifact after a bad line', () => {
    const lines = fixtureLines(`${DOCS}aws-docs-vpcflow-accepted-rejected.log`);
    const out = run([mapper()], [lines[0], 'garbage', lines[1], lines[2]]);
    expect(out.errors.map((e) => [e.seq, e.error.message])).toEqual([[1, 'vpcflow: expected 14 fields, got 1']]);
    expect(out.rows.map((r) => r.action)).toEqual(['ACCEPT', 'REJECT']);
  });

  it('rejects a non-integer in an integer field, naming it', () => {
    const r = mapVpcFlowLine(compileVpcFormat(DEFAULT_VPC_FORMAT), '2 1 eni-1 1.1.1.1 2.2.2.2 80x 443 6 1 1 1 2 ACCEPT OK');
    expect(r).toBeInstanceOf(RowError);
    expect((r as RowError).message).toBe('vpcflow: field srcport is not an integer: "80x"');
  });
});

describe('vpcflow: NODATA and SKIPDATA', () => {
  it('keeps them by default and drops them with skipNoData', () => {
    const lines = fixtureLines(`${DOCS}aws-docs-vpcflow-nodata-skipdata.log`);
    expect(run([mapper()], lines).rows.map((r) => r.log_status)).toEqual(['NODATA', 'SKIPDATA']);
    const skipped = run([mapper({ skipNoData: true })], lines);
    expect(skipped.rows).toEqual([]);
    expect(skipped.filtered).toBe(3);
    const ok = run([mapper({ skipNoData: true })], fixtureLines(`${DOCS}aws-docs-vpcflow-accepted-rejected.log`));
    expect(ok.rows).toHaveLength(2);
  });
});

describe('vpcflow: header and format', () => {
  it('sees the header through skip() when a run resumes mid-artifact', () => {
    const lines = fixtureLines(`${DOCS}aws-docs-vpcflow-traffic-path-v5.log`);
    const out = run([mapper()], lines, artifact(), 2);
    expect(out.errors).toEqual([]);
    expect(out.rows).toHaveLength(1);
    expect(out.rows[0]).toMatchObject({ traffic_path: 8, flow_direction: 'egress' });
  });

  it('uses the default v2 format without a header or option', () => {
    const lines = fixtureLines(`${DOCS}aws-docs-vpcflow-accepted-rejected.log`).slice(1);
    const out = run([mapper()], lines);
    expect(out.rows.map((r) => r.dstport)).toEqual([22, 3389]);
    expect(out.rows[0]!._id).toBe(positionId(artifact().identity, 0));
  });

  it('gives a line without start and end the delivery time in its file name, else the file\'s last change, never the read time when either is known', () => {
    const lines = fixtureLines(`${DOCS}aws-docs-vpcflow-nat-gateway.log`);
    const named = artifact('s3://flow-bucket/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/03/01/123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20240301T0005Z_a1b2c3d4.log.gz');
    const modified = { ...artifact('file:///logs/nat-gateway.log'), mtime: new Date('2024-03-02T10:20:30.456Z') };
    const both = { ...named, mtime: new Date('2024-03-02T10:20:30.456Z') };
    const times = (ref: ArtifactRef) => [...new Set(run([mapper()], lines, ref).rows.map((r) => r._time))];
    expect(times(named)).toEqual(['2024-03-01T00:05:00.000Z']);
    expect(times(modified)).toEqual(['2024-03-02T10:20:30.456Z']);
    expect(times(both), 'the name wins').toEqual(['2024-03-01T00:05:00.000Z']);
    expect(times(artifact('file:///logs/nat-gateway.log')), 'neither: the time of reading').toEqual([NOW.toISOString()]);
    // A line with start keeps its own time whatever the artifact says.
    const accepted = fixtureLines(`${DOCS}aws-docs-vpcflow-accepted-rejected.log`);
    expect(run([mapper()], accepted, both).rows[0]!._time).toBe('2014-12-14T04:06:50.000Z');
    // The fast path gives the same rows as map.
    for (const ref of [named, modified, both]) agreeWrite(mapper(), lines, ref);
  });

  it('uses the format option for headerless lines, in either syntax', () => {
    const line = fixtureLines(`${DOCS}aws-docs-vpcflow-nat-gateway.log`)[1]!;
    for (const format of [
      '${instance-id} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr}',
      'instance-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr',
    ]) {
      const out = run([mapper({ format })], [line]);
      expect(out.rows[0]).toMatchObject({ instance_id: null, pkt_dstaddr: '203.0.113.5' });
    }
  });

  it('lets a header line win over the format option', () => {
    const out = run([mapper({ format: 'version srcaddr' })], fixtureLines(`${DOCS}aws-docs-vpcflow-ipv6.log`));
    expect(out.rows[0]).toMatchObject({ dstport: 22, bytes: 8855 });
  });

  it('only takes the first record as a header', () => {
    const lines = fixtureLines(`${DOCS}aws-docs-vpcflow-ipv6.log`);
    const out = run([mapper()], [lines[1], lines[0]]);
    expect(out.rows).toHaveLength(1);
    expect(out.errors[0]!.error.message).toBe('vpcflow: field version is not an integer: "version"');
  });

  it('ignores a byte-order mark and CRLF endings', () => {
    const lines = fixtureLines(`${DOCS}aws-docs-vpcflow-accepted-rejected.log`).map((l) => `${l}\r`);
    lines[0] = `\uFEFF${lines[0]}`;
    expect(run([mapper()], lines).rows.map((r) => r.log_status)).toEqual(['OK', 'OK']);
  });

  it('accepts a line as a Buffer', () => {
    const lines = fixtureLines(`${DOCS}aws-docs-vpcflow-ipv6.log`).map((l) => Buffer.from(l));
    expect(run([mapper()], lines).rows[0]).toMatchObject({ srcaddr: '2001:db8:1234:a100:8d6e:3477:df66:f105', packets: 54 });
  });

  it('skips blank lines', () => {
    expect(mapVpcFlowLine(compileVpcFormat(DEFAULT_VPC_FORMAT), '   ')).toBeNull();
    const out = run([mapper()], ['', '  ']);
    expect(out).toMatchObject({ rows: [], errors: [], filtered: 2 });
  });

  it.each([
    ['version 1bad', 'vpcflow format: "1bad" at column 9 is not a field name'],
    ['${version} ${version}', 'vpcflow format: field "version" at column 12 appears twice'],
    ['  ', 'vpcflow format: no fields'],
  ])('rejects the format %j at create time', (format, message) => {
    expect(() => mapper({ format })).toThrow(expect.objectContaining({ code: 'PIPE_CONFIG_INVALID', message }));
  });

  it('parses formats and recognises headers', () => {
    expect(parseVpcFormat('${version} ${account-id}  ${new-field-9}')).toEqual(['version', 'account-id', 'new-field-9']);
    expect(headerFields('version account-id interface-id')).toEqual(['version', 'account-id', 'interface-id']);
    expect(headerFields('version account-id some-future-field')).toEqual(['version', 'account-id', 'some-future-field']);
    expect(headerFields('eni-abc ingress')).toBeUndefined();
    expect(headerFields('2 123456789010 eni-1235b8ca123456789')).toBeUndefined();
    expect(headerFields('version version')).toBeUndefined();
  });

  it('keeps an unknown field as a string and an integer past 2^53 as its digits', () => {
    const f = compileVpcFormat(['bytes', 'future-thing']);
    expect(mapVpcFlowLine(f, '99999999999999999999 0042', 0)).toEqual({
      bytes: '99999999999999999999', future_thing: '0042', _time: '1970-01-01T00:00:00.000Z',
    });
  });

  it('takes _time from end when start is "-"', () => {
    const f = compileVpcFormat(['start', 'end']);
    expect(mapVpcFlowLine(f, '- 1418530070')).toEqual({ start: null, end: 1418530070, _time: '2014-12-14T04:07:50.000Z' });
  });
});

describe('vpcflow: field order does not matter (property)', () => {
  // Every sample with a header, plus one format holding every known field.
  const all = [...VPC_FIELDS.keys()];
  const everyField = [all.join(' '), all.map((f, i) => (VPC_FIELDS.get(f)!.int ? String(i * 7) : i % 5 === 0 ? '-' : `v${i}-x`)).join(' ')];
  const samples = files.map((f) => fixtureLines(f.file).slice(0, 2)).concat([everyField]);

  it('maps a permuted header + line to the same row as the original order', async () => {
    const { prng, shuffle } = await import('./helpers.js');
    const random = prng(20240301);
    let checked = 0;
    for (let iter = 0; iter < 400; iter++) {
      const [header, line] = samples[iter % samples.length]!;
      const names = header!.split(/\s+/);
      const values = line!.trim().split(/\s+/);
      const order = shuffle(names.map((_, i) => i), random);
      const expected = run([mapper()], [header, line]).rows[0];
      const permuted = run([mapper()], [order.map((i) => names[i]).join(' '), order.map((i) => values[i]).join('  ')]).rows[0];
      expect(permuted).toEqual(expected);
      expect(permuted).toBeDefined();
      checked++;
    }
    expect(checked).toBe(400);
  });
});

describe('vpcflow spec', () => {
  it('declares its loader and options', () => {
    expect(spec).toMatchObject({ kind: 'mapper', type: 'vpcflow', defaultLoader: [{ type: 'lines' }], consumes: 'records' });
    expect(spec.options.skipNoData).toMatchObject({ type: 'boolean', default: false });
    expect(parseVpcFormat(spec.options.format!.default as string)).toEqual(DEFAULT_VPC_FORMAT);
    expect(parseVpcFormat(spec.options.format!.example as string)).toHaveLength(8);
  });
});
