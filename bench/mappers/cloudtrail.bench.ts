/**
 * cloudtrail mapper: JSON.parse + map per event, against JSON.parse alone over the same events.
 * The events are generated from three sample shapes (an IAM user's management call, an assumed
 * role's data event with resources, an AWS service's S3 call) with seeded ids, times and addresses.
 */
import { create } from '../../src/mappers/cloudtrail.js';
import type { ComponentContext, RecordContext } from '../../src/types.js';
import { prng, result, runIfMain, timeBest, type BenchResult } from './harness.js';

const EVENTS = 40_000;

const SHAPES: Array<Record<string, unknown>> = [
  {
    eventVersion: '1.08',
    userIdentity: { type: 'IAMUser', principalId: 'EXAMPLE6E4XEGITWATV6R', arn: 'arn:aws:iam::123456789012:user/Mateo', accountId: '123456789012', accessKeyId: 'AKIAIOSFODNN7EXAMPLE', userName: 'Mateo', sessionContext: { sessionIssuer: {}, webIdFederationData: {}, attributes: { creationDate: '2023-07-19T21:11:57Z', mfaAuthenticated: 'false' } } },
    eventSource: 'ec2.amazonaws.com', eventName: 'StartInstances', awsRegion: 'us-east-1',
    userAgent: 'aws-cli/2.13.5 Python/3.11.4 Linux/4.14.255-314-253.539.amzn2.x86_64 exec-env/CloudShell exe/x86_64.amzn.2 prompt/off command/ec2.start-instances',
    requestParameters: { instancesSet: { items: [{ instanceId: 'i-EXAMPLE56126103cb' }, { instanceId: 'i-EXAMPLEaff4840c22' }] } },
    responseElements: { instancesSet: { items: [{ instanceId: 'i-EXAMPLEaff4840c22', currentState: { code: 0, name: 'pending' }, previousState: { code: 80, name: 'stopped' } }] } },
    readOnly: false, eventType: 'AwsApiCall', apiVersion: 'v1', managementEvent: true, recipientAccountId: '123456789012', eventCategory: 'Management',
    tlsDetails: { tlsVersion: 'TLSv1.2', cipherSuite: 'ECDHE-RSA-AES128-GCM-SHA256', clientProvidedHostHeader: 'ec2.us-east-1.amazonaws.com' },
  },
  {
    eventVersion: '1.08',
    userIdentity: { type: 'AssumedRole', principalId: 'EX_PRINCIPAL_ID', arn: 'arn:aws:iam::123456789012:user/Bob', accountId: '123456789012', accessKeyId: 'AKIAIOSFODNN7EXAMPLE', sessionContext: { sessionIssuer: { type: 'Role', principalId: 'AKIAIOSFODNN7EXAMPLE', arn: 'arn:aws:iam::123456789012:role/Admin', accountId: '123456789012', userName: 'ExampleUser' }, attributes: { creationDate: '2023-08-21T16:44:05Z', mfaAuthenticated: 'true' } } },
    eventSource: 'sns.amazonaws.com', eventName: 'Publish', awsRegion: 'us-east-1',
    userAgent: 'aws-cli/1.29.16 md/Botocore#1.31.16 ua/2.0 os/linux#5.4.250-173.369.amzn2int.x86_64 md/arch#x86_64 lang/python#3.8.17',
    requestParameters: { topicArn: 'arn:aws:sns:us-east-1:123456789012:ExampleSNSTopic', message: 'HIDDEN_DUE_TO_SECURITY_REASONS', subject: 'HIDDEN_DUE_TO_SECURITY_REASONS', messageStructure: 'json' },
    responseElements: { messageId: '0787cd1e-d92b-521c-a8b4-90434e8ef840' },
    readOnly: false, resources: [{ accountId: '123456789012', type: 'AWS::SNS::Topic', ARN: 'arn:aws:sns:us-east-1:123456789012:ExampleSNSTopic' }],
    eventType: 'AwsApiCall', managementEvent: false, recipientAccountId: '123456789012', eventCategory: 'Data',
  },
  {
    eventVersion: '1.11',
    userIdentity: { type: 'AWSService', invokedBy: 's3.amazonaws.com' },
    eventSource: 's3.amazonaws.com', eventName: 'PutObject', awsRegion: 'eu-west-1', userAgent: 's3.amazonaws.com',
    requestParameters: { bucketName: 'amzn-s3-demo-bucket', Host: 's3.eu-west-1.amazonaws.com', key: 'AWSLogs/627286350134/s3/2026-01-28-09-26-59-AB82D7306CDE5EF8' },
    responseElements: { 'x-amz-server-side-encryption': 'AES256' },
    additionalEventData: { SignatureVersion: 'SigV4', CipherSuite: 'TLS_AES_128_GCM_SHA256', bytesTransferredIn: 576, SSEApplied: 'Default_SSE_S3', AuthenticationMethod: 'AuthHeader', bytesTransferredOut: 0 },
    readOnly: false, resources: [{ accountId: '627286350134', type: 'AWS::S3::Bucket', ARN: 'arn:aws:s3:::amzn-s3-demo-bucket' }],
    eventType: 'AwsApiCall', managementEvent: false, recipientAccountId: '627286350134', vpcEndpointId: 'AWS Internal', eventCategory: 'Data',
  },
];

function hex(random: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(random() * 16).toString(16);
  return s;
}

/** The events as JSON text, as they sit in a decompressed log file. */
export function generateEvents(count = EVENTS, seed = 7): string[] {
  const random = prng(seed);
  const t0 = Date.parse('2024-03-01T00:00:00Z');
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const shape = SHAPES[i % SHAPES.length]!;
    const event = {
      ...shape,
      eventTime: new Date(t0 + Math.floor(random() * 86_400_000)).toISOString().replace('.000Z', 'Z'),
      sourceIPAddress: `${10 + Math.floor(random() * 200)}.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}`,
      requestID: `${hex(random, 8)}-${hex(random, 4)}-${hex(random, 4)}-${hex(random, 4)}-${hex(random, 12)}`,
      eventID: `${hex(random, 8)}-${hex(random, 4)}-4${hex(random, 3)}-${hex(random, 4)}-${hex(random, 12)}`,
    };
    out.push(JSON.stringify(event));
  }
  return out;
}

export async function run(): Promise<BenchResult> {
  const events = generateEvents();
  const bytes = events.reduce((n, s) => n + Buffer.byteLength(s), 0);
  const ctx = { pipeline: 'bench', log: { debug() {}, info() {}, warn() {}, error() {} } } as unknown as ComponentContext;
  const ref = { identity: 'bench#1', uri: 's3://bench/AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/x.json.gz' };
  const artifactMapper = create({}, ctx).forArtifact(ref);
  const rc: RecordContext = { artifact: ref, seq: 0, remember() {} };

  const baseline = timeBest(() => {
    let n = 0;
    for (const s of events) if (JSON.parse(s) !== null) n++;
    return n;
  });
  const mapped = timeBest(() => {
    let n = 0;
    for (let i = 0; i < events.length; i++) {
      rc.seq = i;
      const r = artifactMapper.map(JSON.parse(events[i]!), rc);
      if (r !== null && typeof r === 'object' && '_id' in r) n++;
    }
    return n;
  });
  if (mapped.count !== events.length) throw new Error(`cloudtrail bench: ${mapped.count} rows from ${events.length} events`);
  return result('mapper cloudtrail (JSON.parse + map vs JSON.parse)', mapped.count, bytes, mapped.seconds, baseline.seconds);
}

runIfMain(import.meta.url, run);
