import { describe, expect, it } from 'vitest';
import { RowSkip } from '../../src/types.js';
import { create } from '../../src/mappers/vpcflow.js';
import { fakeContext, fixtureJson, fixtureLines, run } from './helpers.js';

const DOCS = 'public/aws-docs-vpc-user-guide/';
const OTEL = 'public/opentelemetry-collector-contrib/';

function mapper(options: Record<string, unknown> = {}) {
  return create({ skipNoData: false, ...options }, fakeContext());
}

describe('vpcflow: CloudWatch Logs deliveries', () => {
  it('fans out a DATA_MESSAGE with the event ids and the group/stream source', () => {
    const out = run([mapper()], [fixtureJson(`${OTEL}valid_vpc_flow_cw.json`)]);
    expect(out.errors).toEqual([]);
    expect(out.rows).toHaveLength(2);
    expect(out.rows.map((r) => r._id)).toEqual(['eventId1', 'eventId2']);
    expect(out.rows[0]).toMatchObject({
      _source: 'cloudwatch:///aws/vpc/flowlogs/eni-1235b8ca123456789', account_id: '123456789010', dstport: 22, _time: '2014-12-14T04:06:50.000Z',
    });
    expect(out.rows[1]).toMatchObject({ dstport: 3389, action: 'REJECT' });
  });

  it('reads a custom-format DATA_MESSAGE with the format option, _time from the event', () => {
    const msg = fixtureJson(`${OTEL}valid_vpc_flow_cw_custom.json`);
    const out = run([mapper({ format: '${version} ${interface-id} ${srcaddr} ${dstaddr}' })], [msg]);
    expect(out.rows).toEqual([
      { version: 2, interface_id: 'eni-1235b8ca123456789', srcaddr: '172.31.16.139', dstaddr: '172.31.16.21', _time: '2024-12-05T20:20:00.000Z', _id: '35601234567890123456789012345678901234567890123456789', _source: 'cloudwatch:///aws/vpc/flowlogs/eni-1234567890abcdef' },
      { version: 2, interface_id: 'eni-1235b8ca123456789', srcaddr: '172.31.9.69', dstaddr: '172.31.9.12', _time: '2024-12-05T20:20:01.000Z', _id: '35601234567890123456789012345678901234567890123456788', _source: 'cloudwatch:///aws/vpc/flowlogs/eni-1234567890abcdef' },
    ]);
    const wrong = run([mapper()], [msg]);
    expect(wrong.rows).toEqual([]);
    expect(wrong.errors[0]!.error.message).toBe('CloudWatch event 35601234567890123456789012345678901234567890123456789: vpcflow: expected 14 fields, got 4');
  });

  it('reads a transit gateway DATA_MESSAGE (27 fields, no packets-lost-*)', () => {
    const header = fixtureLines(`${OTEL}valid_tgw_flow_log.log`)[0]!.split(' ').filter((f) => !f.startsWith('packets-lost-'));
    const out = run([mapper({ format: header.join(' ') })], [fixtureJson(`${OTEL}valid_tgw_flow_cw.json`)]);
    expect(out.errors).toEqual([]);
    expect(out.rows).toHaveLength(1);
    expect(out.rows[0]).toMatchObject({
      _id: 'eventId1', _source: 'cloudwatch:///aws/tgw/flowlogs/tgw-0abc12345def67890', version: 6, tgw_id: 'tgw-0abc12345def67890',
      tgw_pair_attachment_id: 'tgw-attach-0def12345abc67890', srcport: 12345, dstport: 443, tcp_flags: 2, region: 'us-east-1',
    });
    expect(out.rows[0]).not.toHaveProperty('packets_lost_no_route');
  });

  it('keeps the good events of a message with a bad one, which is a row error', () => {
    const ctx = fakeContext();
    const msg = fixtureJson(`${OTEL}valid_vpc_flow_cw.json`) as { logEvents: Array<{ message: string }> };
    msg.logEvents[1]!.message = '2 too short';
    const out = run([create({}, ctx)], [msg]);
    expect(out.rows.map((r) => r._id)).toEqual(['eventId1']);
    expect(out.errors.map((e) => e.error.message)).toEqual(['CloudWatch event eventId2: vpcflow: expected 14 fields, got 3']);
  });

  it('reads one FilterLogEvents event and skips a CONTROL_MESSAGE', () => {
    const line = fixtureLines(`${DOCS}aws-docs-vpcflow-accepted-rejected.log`)[1];
    const out = run([mapper()], [
      { eventId: 'e-1', timestamp: 1, message: line, logStreamName: 'eni-1', logGroupName: 'flows' },
      { messageType: 'CONTROL_MESSAGE', logGroup: '', logStream: '', logEvents: [] },
      42,
    ]);
    expect(out.rows).toHaveLength(1);
    expect(out.rows[0]).toMatchObject({ _id: 'e-1', _source: 'cloudwatch://flows/eni-1', dstport: 22 });
    expect(out.skips.map((s) => s.skip)).toEqual([new RowSkip('cloudwatch control message')]);
    expect(out.errors.map((e) => e.error.message)).toEqual(['vpcflow: expected a text line or a CloudWatch Logs message']);
  });
});
