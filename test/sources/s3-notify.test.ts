/**
 * Parsing S3 event notifications as SQS delivers them: S3 directly, wrapped by SNS (and raw SNS
 * delivery), EventBridge; the test event, non-create events, URL-encoded keys, malformed messages.
 * The payloads are AWS's documented examples.
 */
import { describe, expect, it } from 'vitest';
import { decodeS3Key, parseNotification, type Notification } from '../../src/sources/s3-notify.js';

/** "Example message when an object is created using the PUT request" (S3 User Guide, Event message structure). */
const S3_PUT = `{
   "Records":[
      {
         "eventVersion":"2.1",
         "eventSource":"aws:s3",
         "awsRegion":"us-west-2",
         "eventTime":"1970-01-01T00:00:00.000Z",
         "eventName":"ObjectCreated:Put",
         "userIdentity":{
            "principalId":"AIDAJDPLRKLG7UEXAMPLE"
         },
         "requestParameters":{
            "sourceIPAddress":"127.0.0.1"
         },
         "responseElements":{
            "x-amz-request-id":"C3D13FE58DE4C810",
            "x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
         },
         "s3":{
            "s3SchemaVersion":"1.0",
            "configurationId":"testConfigRule",
            "bucket":{
               "name":"mybucket",
               "ownerIdentity":{
                  "principalId":"A3NL1KOZZKExample"
               },
               "arn":"arn:aws:s3:::mybucket"
            },
            "object":{
               "key":"HappyFace.jpg",
               "size":1024,
               "eTag":"d41d8cd98f00b204e9800998ecf8427e",
               "versionId":"096fKKXTRTtl3on89fVO.nfljtsv6qko",
               "sequencer":"0055AED6DCD90281E5"
            }
         }
      }
   ]
}`;

/** "Test message" S3 sends when a notification is configured (same page). */
const S3_TEST = `{
   "Service":"Amazon S3",
   "Event":"s3:TestEvent",
   "Time":"2014-10-13T15:57:02.089Z",
   "Bucket":"bucketname",
   "RequestId":"5582815E1AEA5ADF",
   "HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"
}`;

/** "Object created" (S3 User Guide, EventBridge event message structure). */
const EVENTBRIDGE_CREATED = `{
  "version": "0",
  "id": "17793124-05d4-b198-2fde-7ededc63b103",
  "detail-type": "Object Created",
  "source": "aws.s3",
  "account": "111122223333",
  "time": "2021-11-12T00:00:00Z",
  "region": "ca-central-1",
  "resources": [
    "arn:aws:s3:::amzn-s3-demo-bucket1"
  ],
  "detail": {
    "version": "0",
    "bucket": {
      "name": "amzn-s3-demo-bucket1"
    },
    "object": {
      "key": "example-key",
      "size": 5,
      "etag": "b1946ac92492d2347c6235b4d2611184",
      "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
      "sequencer": "00617F08299329D189"
    },
    "request-id": "N4N7GDK58NMKJ12R",
    "requester": "123456789012",
    "source-ip-address": "1.2.3.4",
    "reason": "PutObject"
  }
}`;

/** "Object deleted (using DeleteObject)" (same page). */
const EVENTBRIDGE_DELETED = `{
  "version": "0",
  "id": "2ee9cc15-d022-99ea-1fb8-1b1bac4850f9",
  "detail-type": "Object Deleted",
  "source": "aws.s3",
  "account": "111122223333",
  "time": "2021-11-12T00:00:00Z",
  "region": "ca-central-1",
  "resources": [
    "arn:aws:s3:::amzn-s3-demo-bucket1"
  ],
  "detail": {
    "version": "0",
    "bucket": {
      "name": "amzn-s3-demo-bucket1"
    },
    "object": {
      "key": "example-key",
      "etag": "d41d8cd98f00b204e9800998ecf8427e",
      "version-id": "1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF",
      "sequencer": "617f0837b476e463"
    },
    "request-id": "0BH729840619AG5K",
    "requester": "123456789012",
    "source-ip-address": "1.2.3.4",
    "reason": "DeleteObject",
    "deletion-type": "Delete Marker Created"
  }
}`;

/** An SNS notification as delivered to SQS without raw delivery (SNS Developer Guide, HTTP/S notification JSON format), carrying `message`. */
function snsEnvelope(message: string): string {
  return JSON.stringify({
    Type: 'Notification',
    MessageId: '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324',
    TopicArn: 'arn:aws:sns:us-west-2:123456789012:MyTopic',
    Subject: 'Amazon S3 Notification',
    Message: message,
    Timestamp: '2012-05-02T00:54:06.655Z',
    SignatureVersion: '1',
    Signature: 'EXAMPLEw6JRN...',
    SigningCertURL: 'https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem',
    UnsubscribeURL: 'https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0-26c4-47ec-8998-413945fb5a96',
  });
}

/** The documented PUT example with another key and event name. */
function s3With(key: string, eventName = 'ObjectCreated:Put'): string {
  const doc = JSON.parse(S3_PUT) as { Records: Array<{ eventName: string; s3: { object: { key: string } } }> };
  doc.Records[0]!.s3.object.key = key;
  doc.Records[0]!.eventName = eventName;
  return JSON.stringify(doc);
}

const happyFace = {
  bucket: 'mybucket', key: 'HappyFace.jpg', etag: 'd41d8cd98f00b204e9800998ecf8427e', size: 1024,
  time: new Date('1970-01-01T00:00:00.000Z'), sequencer: '0055AED6DCD90281E5', event: 'ObjectCreated:Put',
};

function objects(body: string): Notification {
  const n = parseNotification(body);
  if ('error' in n) throw new Error(n.error);
  return n;
}

describe('parseNotification', () => {
  it('S3 → SQS: the documented ObjectCreated:Put example', () => {
    expect(parseNotification(S3_PUT)).toEqual({ via: 's3', objects: [happyFace], testEvents: 0, otherEvents: [] });
  });

  it('S3 → SNS → SQS: the envelope, its Message the S3 JSON as a string', () => {
    expect(parseNotification(snsEnvelope(S3_PUT))).toEqual({ via: 'sns', objects: [happyFace], testEvents: 0, otherEvents: [] });
  });

  it('S3 → SNS with raw message delivery: the S3 JSON itself', () => {
    expect(objects(JSON.stringify(JSON.parse(S3_PUT))).objects).toEqual([happyFace]);
  });

  it('S3 → EventBridge → SQS: the documented Object Created example, the key not URL-encoded', () => {
    expect(parseNotification(EVENTBRIDGE_CREATED)).toEqual({
      via: 'eventbridge', testEvents: 0, otherEvents: [],
      objects: [{
        bucket: 'amzn-s3-demo-bucket1', key: 'example-key', etag: 'b1946ac92492d2347c6235b4d2611184', size: 5,
        time: new Date('2021-11-12T00:00:00Z'), sequencer: '00617F08299329D189', event: 'Object Created',
      }],
    });
    const plain = JSON.parse(EVENTBRIDGE_CREATED) as { detail: { object: { key: string } } };
    plain.detail.object.key = 'a b+c%3D.json';
    expect(objects(JSON.stringify(plain)).objects[0]!.key).toBe('a b+c%3D.json');
  });

  it('EventBridge through SNS', () => {
    expect(objects(snsEnvelope(EVENTBRIDGE_CREATED))).toMatchObject({ via: 'sns', objects: [{ key: 'example-key' }] });
  });

  it.each([
    ['direct', S3_TEST],
    ['through SNS', snsEnvelope(S3_TEST)],
  ])('s3:TestEvent (%s): counted, nothing to collect', (_name, body) => {
    expect(objects(body)).toMatchObject({ objects: [], testEvents: 1, otherEvents: [] });
  });

  it.each([
    ['ObjectRemoved:Delete', s3With('HappyFace.jpg', 'ObjectRemoved:Delete')],
    ['ObjectRemoved:DeleteMarkerCreated', snsEnvelope(s3With('HappyFace.jpg', 'ObjectRemoved:DeleteMarkerCreated'))],
    ['ObjectRestore:Completed', s3With('HappyFace.jpg', 'ObjectRestore:Completed')],
    ['Object Deleted', EVENTBRIDGE_DELETED],
    ['sns:SubscriptionConfirmation', JSON.stringify({ Type: 'SubscriptionConfirmation', Message: 'You have chosen to subscribe…', SubscribeURL: 'https://sns…' })],
  ])('a non-create event (%s): counted, nothing to collect', (name, body) => {
    expect(objects(body)).toMatchObject({ objects: [], testEvents: 0, otherEvents: [name] });
  });

  it.each([
    ['ObjectCreated:Copy'], ['ObjectCreated:Post'], ['ObjectCreated:CompleteMultipartUpload'],
  ])('every ObjectCreated kind (%s) names its object', (event) => {
    expect(objects(s3With('k', event)).objects).toMatchObject([{ key: 'k', event }]);
  });

  it('several records in one message: creations collected, the rest counted', () => {
    const doc = JSON.parse(S3_PUT) as { Records: unknown[] };
    const removed = (JSON.parse(s3With('old.jpg', 'ObjectRemoved:Delete')) as { Records: unknown[] }).Records[0];
    const other = (JSON.parse(s3With('second.jpg')) as { Records: unknown[] }).Records[0];
    doc.Records.push(removed, other);
    expect(objects(JSON.stringify(doc))).toMatchObject({ objects: [{ key: 'HappyFace.jpg' }, { key: 'second.jpg' }], otherEvents: ['ObjectRemoved:Delete'] });
  });

  it.each([
    ['spaces as +', 'AWSLogs/my+folder/file+one.json.gz', 'AWSLogs/my folder/file one.json.gz'],
    ['= as %3D', 'logs/dt%3D2024-03-01/hour%3D01/x.gz', 'logs/dt=2024-03-01/hour=01/x.gz'],
    ['unicode as UTF-8 escapes', 'caf%C3%A9/%C3%BC%E2%82%AC.json', 'café/ü€.json'],
    ['a literal + as %2B', 'a%2Bb.json', 'a+b.json'],
    ['an encoded slash', 'a%2Fb.json', 'a/b.json'],
  ])('S3 keys are URL-decoded: %s', (_name, encoded, key) => {
    expect(objects(s3With(encoded)).objects[0]!.key).toBe(key);
    expect(decodeS3Key(encoded)).toBe(key);
  });

  it('ETags lose their quotes; sizes as strings are read; odd values are left out (the object is then looked up)', () => {
    const doc = JSON.parse(S3_PUT) as { Records: Array<{ eventTime: string; s3: { object: Record<string, unknown> } }> };
    Object.assign(doc.Records[0]!.s3.object, { eTag: '"abc-2"', size: '2048' });
    expect(objects(JSON.stringify(doc)).objects[0]).toMatchObject({ etag: 'abc-2', size: 2048 });
    Object.assign(doc.Records[0]!.s3.object, { eTag: '', size: -1, sequencer: 7 });
    doc.Records[0]!.eventTime = 'not a time';
    const o = objects(JSON.stringify(doc)).objects[0]!;
    expect(o).toEqual({ bucket: 'mybucket', key: 'HappyFace.jpg', event: 'ObjectCreated:Put' });
  });

  it.each([
    ['not JSON', 'hello world', "not JSON: 'hello world'"],
    ['JSON but not an object', '[1,2]', "not a JSON object: '[1,2]'"],
    ['an unknown shape', '{"foo":1,"bar":2}', 'not an S3 event notification (no Records, Event or detail-type; keys: foo, bar)'],
    ['an empty object', '{}', 'not an S3 event notification (no Records, Event or detail-type; keys: none)'],
    ['no records', '{"Records":[]}', 'an S3 notification with no Records'],
    ['a record without eventName', '{"Records":[{"s3":{}}]}', 'Records[0]: no eventName'],
    ['a record of another service', '{"Records":[{"eventSource":"aws:sqs","eventName":"x"}]}', 'Records[0]: not an S3 event (eventSource aws:sqs)'],
    ['a creation without bucket', '{"Records":[{"eventName":"ObjectCreated:Put","s3":{"object":{"key":"k"}}}]}', 'Records[0]: ObjectCreated:Put without s3.bucket.name'],
    ['a creation without key', '{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{}}}]}', 'Records[0]: ObjectCreated:Put without s3.object.key'],
    ['a malformed key escape', s3With('bad%ZZkey'), "Records[0]: s3.object.key 'bad%ZZkey' is not URL-encoded as S3 encodes keys"],
    ['a truncated UTF-8 escape', s3With('caf%C3'), "Records[0]: s3.object.key 'caf%C3' is not URL-encoded as S3 encodes keys"],
    ['an SNS envelope around text', snsEnvelope('hello'), "SNS notification whose Message is not JSON: 'hello'"],
    ['an SNS envelope around a list', snsEnvelope('[]'), "SNS notification whose Message is not a JSON object: '[]'"],
    ['an SNS envelope around an unknown shape', snsEnvelope('{"a":1}'), 'SNS notification: not an S3 event notification (no Records, Event or detail-type; keys: a)'],
    ['an EventBridge event of another service', '{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{}}', 'an EventBridge event from aws.ec2, not aws.s3 (EC2 Instance State-change Notification)'],
    ['an EventBridge creation without bucket', '{"detail-type":"Object Created","source":"aws.s3","detail":{"object":{"key":"k"}}}', 'EventBridge Object Created without detail.bucket.name'],
    ['an EventBridge creation without key', '{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"}}}', 'EventBridge Object Created without detail.object.key'],
  ])('unparseable: %s', (_name, body, error) => {
    expect(parseNotification(body)).toEqual({ error });
  });

  it('a long body is cut in the reason', () => {
    const r = parseNotification(`x${'y'.repeat(500)}`);
    expect('error' in r && r.error.length).toBeLessThan(100);
  });
});
