import { describe, expect, it } from 'vitest';
import { create, mapCloudTrail, spec } from '../../src/mappers/cloudtrail.js';
import { RowError, RowSkip, type Row } from '../../src/types.js';
import { artifact, fakeContext, fixture, fixtureJson, run } from './helpers.js';

const OTEL = 'public/opentelemetry-collector-contrib/';
const REF = artifact('s3://trail-bucket/AWSLogs/123456789012/CloudTrail/us-east-1/2023/07/19/file.json.gz', 'trail-bucket/file.json.gz#etag');

function mapper() {
  return create({}, fakeContext());
}

function records(rel: string): Array<Record<string, unknown>> {
  return (fixtureJson(rel) as { Records: Array<Record<string, unknown>> }).Records;
}

function withoutAdded(row: Row): Record<string, unknown> {
  const { _id, _time, _source, ...rest } = row;
  return rest;
}

describe('cloudtrail: cloudtrail_log.json', () => {
  const expected: Array<[string, string, Record<string, unknown>]> = [
    ['e755e09c-42f9-4c5c-9064-EXAMPLE228c7', '2023-07-19T21:17:28.000Z', { eventName: 'StartInstances', eventVersion: '1.08', userIdentity: { type: 'IAMUser', userName: 'Mateo' }, readOnly: false, apiVersion: 'v1', sessionCredentialFromConsole: 'true' }],
    ['ba0801a1-87ec-4d26-be87-EXAMPLE75bbb', '2023-07-19T21:25:09.000Z', { eventName: 'CreateUser', requestParameters: { userName: 'Richard' }, responseElements: { user: { createDate: 'Jul 19, 2023 9:25:09 PM' } } }],
    ['bb3496d4-5252-4660-9c28-3c6aebdb21c0', '2023-08-21T16:48:37.000Z', { eventName: 'Publish', eventCategory: 'Data', managementEvent: false, userIdentity: { type: 'AssumedRole', sessionContext: { sessionIssuer: { type: 'Role' } } }, resources: [{ type: 'AWS::SNS::Topic', ARN: 'arn:aws:sns:us-east-1:123456789012:ExampleSNSTopic' }] }],
    ['654a30ff-b0f3-4527-81b6-EXAMPLEf2393', '2023-01-02T02:51:00.000Z', { eventType: 'AwsCloudTrailInsight', eventCategory: 'Insight', sharedEventID: 'bcbfc274-8559-4a56-beb0-EXAMPLEa6c34', insightDetails: { state: 'Start', insightContext: { statistics: { baseline: { average: 84.410596421 }, insight: { average: 669 } } } } }],
    ['694d604a-d190-4470-8dd1-EXAMPLEe20c1', '2023-07-19T21:35:03.000Z', { eventVersion: '1.09', errorCode: 'TrailNotFoundException', responseElements: null, requestParameters: { isMultiRegionTrail: true } }],
    ['a1b2c3d4-5678-90ab-cdef-EXAMPLE22222', '2025-06-15T14:30:00.000Z', { eventType: 'AwsConsoleSignIn', userIdentity: { type: 'IdentityCenterUser', accessKeyId: '' }, requestParameters: null, additionalEventData: { MFAUsed: true } }],
    ['a24b3967-ddad-417f-9b22-2332b918db06', '2021-01-14T01:41:59.000Z', { eventType: 'AwsServiceEvent', userIdentity: { invokedBy: 'AWS Internal', accountId: '111122223333' }, serviceEventDetails: { rotationType: 'AUTOMATIC' } }],
  ];

  it('maps each streamed record (as the json loader yields them) to one row', () => {
    const out = run([mapper()], records(`${OTEL}cloudtrail_log.json`), REF);
    expect(out.errors).toEqual([]);
    expect(out.skips).toEqual([]);
    expect(out.rows).toHaveLength(7);
    out.rows.forEach((row, i) => {
      const [id, time, partial] = expected[i]!;
      expect(row._id).toBe(id);
      expect(row._time).toBe(time);
      expect(row._source).toBe(REF.uri);
      expect(row).toMatchObject(partial);
    });
    expect(out.rows[3]).not.toHaveProperty('userIdentity');
    expect(out.rows[6]).not.toHaveProperty('userIdentity.type');
  });

  it('fans out the whole document given as one record', () => {
    const out = run([mapper()], [fixtureJson(`${OTEL}cloudtrail_log.json`)], REF);
    expect(out.rows.map((r) => r._id)).toEqual(expected.map((e) => e[0]));
    expect(out.rows.map((r) => r._time)).toEqual(expected.map((e) => e[1]));
  });

  it('is lossless: every field kept as delivered, in order, only _id/_time/_source added', () => {
    const originals = records(`${OTEL}cloudtrail_log.json`);
    const out = run([mapper()], records(`${OTEL}cloudtrail_log.json`), REF);
    out.rows.forEach((row, i) => {
      expect(withoutAdded(row)).toStrictEqual(originals[i]);
      expect(Object.keys(row)).toEqual([...Object.keys(originals[i]!), '_id', '_time', '_source']);
      expect(JSON.stringify(withoutAdded(row))).toBe(JSON.stringify(originals[i]));
    });
  });

  it('annotates the parsed event in place instead of copying it', () => {
    const event = records(`${OTEL}cloudtrail_log.json`)[0]!;
    expect(mapCloudTrail(event, 'file:///x')).toBe(event);
  });
});

describe('cloudtrail: the other samples', () => {
  it('cloudtrail_log_stream.json holds the first three records', () => {
    const stream = run([mapper()], records(`${OTEL}cloudtrail_log_stream.json`), REF).rows;
    const full = run([mapper()], records(`${OTEL}cloudtrail_log.json`).slice(0, 3), REF).rows;
    expect(stream).toHaveLength(3);
    expect(stream).toStrictEqual(full);
  });

  it('an empty Records document gives nothing', () => {
    expect(records(`${OTEL}cloudtrail_log_empty.json`)).toEqual([]);
    const out = run([mapper()], [fixtureJson(`${OTEL}cloudtrail_log_empty.json`)], REF);
    expect(out).toMatchObject({ rows: [], errors: [], skips: [], filtered: 1 });
  });

  it.each(['cloudtrail_digest.json', 'cloudtrail_digest_empty.json'])('%s is skipped as a digest, not failed', (file) => {
    const out = run([mapper()], [fixtureJson(`${OTEL}${file}`)], REF);
    expect(out.rows).toEqual([]);
    expect(out.errors).toEqual([]);
    expect(out.skips).toEqual([{ seq: 0, skip: new RowSkip('cloudtrail digest') }]);
  });

  it.each(['cloudtrail_log_cw.json', 'cloudtrail_log_cw_reordered.json'])('%s: a DATA_MESSAGE of JSON events', (file) => {
    const out = run([mapper()], [fixtureJson(`${OTEL}${file}`)], REF);
    expect(out.errors).toEqual([]);
    expect(out.rows).toHaveLength(1);
    expect(out.rows[0]).toMatchObject({
      _id: '5cb53c22-36b5-3ca3-a389-dae3eec919df',
      _time: '2026-01-28T09:26:59.000Z',
      _source: 'cloudwatch:///aws/cloudtrail/logs/123456789010_CloudTrail_us-east-1',
      eventVersion: '1.11',
      eventName: 'PutObject',
      userIdentity: { type: 'AWSService', invokedBy: 's3.amazonaws.com' },
      additionalEventData: { bytesTransferredIn: 576, 'x-amz-id-2': '8QsIi8XYiGCTf9wDCAncwPM9QKnLiD3Suz4Gg6fcnNzKucKThMi2CYA67zvsIIF9BxHHs1ZPopka8xkHvWV1yem9xlB2NXGJ' },
      vpcEndpointId: 'AWS Internal',
      resources: [{ type: 'AWS::S3::Bucket' }, { type: 'AWS::S3::Object' }],
    });
  });

  it('maps the single-event shape CloudTrail delivers to CloudWatch Logs (a JSON string)', () => {
    const message = (fixtureJson(`${OTEL}cloudtrail_log_cw.json`) as { logEvents: Array<{ message: string }> }).logEvents[0]!.message;
    const cw = artifact('cloudwatch://aws-cloudtrail-logs/123456789010_CloudTrail_us-east-1');
    const out = run([mapper()], [message, `  ${message}\n`], cw);
    expect(out.rows).toHaveLength(2);
    expect(out.rows[0]).toStrictEqual(out.rows[1]);
    expect(out.rows[0]).toMatchObject({ _id: '5cb53c22-36b5-3ca3-a389-dae3eec919df', _source: cw.uri, recipientAccountId: '627286350134' });
    expect(withoutAdded(out.rows[0]!)).toStrictEqual(JSON.parse(message));
  });

  it('maps one FilterLogEvents event, keeping its group and stream as the source', () => {
    const message = (fixtureJson(`${OTEL}cloudtrail_log_cw.json`) as { logEvents: Array<{ message: string }> }).logEvents[0]!.message;
    const out = run([mapper()], [{ eventId: '3778', timestamp: 1769592419000, message, logGroupName: 'trail', logStreamName: 'acct_CloudTrail_eu-west-1' }], REF);
    expect(out.rows[0]).toMatchObject({ _id: '5cb53c22-36b5-3ca3-a389-dae3eec919df', _source: 'cloudwatch://trail/acct_CloudTrail_eu-west-1' });
  });
});

describe('cloudtrail: hand-made identity types and text', () => {
  const cases: Array<[number, string, Record<string, unknown>]> = [
    [0, 'Root', { userIdentity: { arn: 'arn:aws:iam::111122223333:root', accessKeyId: '' }, eventName: 'ConsoleLogin' }],
    [1, 'FederatedUser', { userIdentity: { arn: 'arn:aws:sts::111122223333:federated-user/Bob', sessionContext: { sessionIssuer: { userName: 'Alice' } } } }],
    [2, 'AWSAccount', { userIdentity: { accountId: '444455556666' }, recipientAccountId: '111122223333' }],
    [3, 'SAMLUser', { userIdentity: { identityProvider: 'bdGOnTesti4+ExamplexL/jEvs=' }, requestParameters: { durationSeconds: 3600 } }],
    [4, 'WebIdentityUser', { userIdentity: { identityProvider: 'accounts.google.com' }, responseElements: { provider: 'accounts.google.com' } }],
    [5, 'IAMUser', { userIdentity: { userName: 'José-Müller' }, requestParameters: { key: '報告/2024年/売上 📈 naïve café\u2028line.csv', 'x-amz-meta-owner': 'Zoë "Z" O\'Brien \\ tab\tend' }, sourceIPAddress: '2001:db8::ff00:42:8329' }],
  ];

  it.each(cases)('event %i: %s', (i, type, partial) => {
    const originals = records('cloudtrail/identity-types.json');
    const out = run([mapper()], records('cloudtrail/identity-types.json'), REF);
    expect(out.errors).toEqual([]);
    const row = out.rows[i]!;
    expect(row).toMatchObject({ ...partial, userIdentity: { type, ...(partial.userIdentity as object) } });
    expect(row._id).toBe(originals[i]!.eventID);
    expect(withoutAdded(row)).toStrictEqual(originals[i]);
  });

  it('keeps millisecond eventTimes and non-ASCII text byte for byte', () => {
    const row = run([mapper()], records('cloudtrail/identity-types.json'), REF).rows[5]!;
    expect(row._time).toBe('2024-03-01T13:59:59.123Z');
    const text = fixture('cloudtrail/identity-types.json');
    expect(text).toContain('売上 📈 naïve café');
    expect(JSON.stringify((row.resources as Array<{ ARN: string }>)[0]!.ARN)).toBe('"arn:aws:s3:::amzn-s3-demo-bucket/報告/2024年/売上 📈 naïve café\u2028line.csv"');
  });

  it('unwraps an EventBridge "AWS API Call via CloudTrail" event', () => {
    const envelope = fixtureJson('cloudtrail/eventbridge-api-call.json') as { detail: Record<string, unknown> };
    const detail = structuredClone(envelope.detail);
    const out = run([mapper()], [envelope], REF);
    expect(out.rows).toHaveLength(1);
    expect(out.rows[0]).toMatchObject({ _id: '0e5a7c1d-3b2f-4e8a-9c6d-EXAMPLE00007', _time: '2024-03-01T14:02:11.000Z', _source: REF.uri, eventName: 'TerminateInstances' });
    expect(withoutAdded(out.rows[0]!)).toStrictEqual(detail);
  });
});

describe('cloudtrail: errors and non-events', () => {
  const base = () => records(`${OTEL}cloudtrail_log.json`)[1]!;

  it.each([
    ['without eventID', (e: Record<string, unknown>) => delete e.eventID, 'CloudTrail event without eventID'],
    ['without eventTime', (e: Record<string, unknown>) => delete e.eventTime, 'CloudTrail event without eventTime'],
    ['without both', (e: Record<string, unknown>) => { delete e.eventTime; delete e.eventID; }, 'CloudTrail event without eventID and eventTime'],
    ['with an empty eventID', (e: Record<string, unknown>) => { e.eventID = ''; }, 'CloudTrail event without eventID'],
    ['with a bad eventTime', (e: Record<string, unknown>) => { e.eventTime = 'yesterday'; }, 'CloudTrail eventTime "yesterday" is not a valid time'],
  ])('an event %s is a row error', (_name, edit, message) => {
    const event = base();
    edit(event);
    const out = run([mapper()], [base(), event, base()], REF);
    expect(out.rows).toHaveLength(2);
    expect(out.errors).toHaveLength(1);
    expect(out.errors[0]!.seq).toBe(1);
    expect(out.errors[0]!.error).toMatchObject({ code: 'PIPE_ROW_INVALID', message });
    expect(JSON.parse(out.errors[0]!.error.raw!)).toMatchObject({ eventName: 'CreateUser' });
  });

  it('a string that is not JSON is a row error carrying the text', () => {
    const r = mapCloudTrail('{"eventID": "x", ', 'file:///x');
    expect(r).toBeInstanceOf(RowError);
    expect((r as RowError).message).toMatch(/^CloudTrail record is not JSON: /);
    expect((r as RowError).raw).toBe('{"eventID": "x", ');
  });

  it.each([
    [{ hello: 'world' }, 'not a CloudTrail event'],
    [42, 'not a CloudTrail event'],
    [true, 'not a CloudTrail event'],
    [[1, 'x'], 'not a CloudTrail event'],
    [{ 'detail-type': 'EC2 Instance State-change Notification', detail: { state: 'running' } }, 'not a CloudTrail event'],
    [{ messageType: 'CONTROL_MESSAGE', logGroup: '', logStream: '', logEvents: [{ id: '', timestamp: 1, message: 'CWL CONTROL MESSAGE: Checking health of destination' }] }, 'cloudwatch control message'],
  ])('%j is skipped: %s', (value, reason) => {
    const out = run([mapper()], [value], REF);
    expect(out.rows).toEqual([]);
    expect(out.errors).toEqual([]);
    // An array of non-events fans out: each element is skipped for the same reason.
    expect([...new Set(out.skips.map((s) => s.skip.reason))]).toEqual([reason]);
    expect(out.skips.length).toBe(Array.isArray(value) ? value.length : 1);
  });

  it('keeps the good events of a document with a bad one, which is a row error', () => {
    const ctx = fakeContext();
    const doc = fixtureJson(`${OTEL}cloudtrail_log.json`) as { Records: Array<Record<string, unknown>> };
    delete doc.Records[2]!.eventTime;
    const out = run([create({}, ctx)], [doc], REF);
    expect(out.rows).toHaveLength(6);
    expect(out.errors.map((e) => [e.seq, e.error.message])).toEqual([[0, 'CloudTrail event without eventTime']]);
    expect(ctx.warnings).toEqual([]);
  });

  it('a DATA_MESSAGE whose only message is not JSON is a row error', () => {
    const msg = fixtureJson(`${OTEL}cloudtrail_log_cw.json`) as { logEvents: Array<{ message: string }> };
    msg.logEvents[0]!.message = 'START RequestId: 1234';
    const out = run([mapper()], [msg], REF);
    expect(out.rows).toEqual([]);
    expect(out.errors[0]!.error.message).toMatch(/^CloudWatch event eventId1 message is not JSON: /);
  });
});

describe('cloudtrail spec', () => {
  it('streams Records by default and reads records, not rows', () => {
    expect(spec).toMatchObject({ kind: 'mapper', type: 'cloudtrail', options: {}, consumes: 'records', defaultLoader: [{ type: 'json', path: 'Records' }] });
  });
});
