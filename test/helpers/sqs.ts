/**
 * SQS (and SNS) on the same fauxqs server the S3 tests use, plus a recording proxy in front of its
 * SQS API that notes which messages each ReceiveMessage returned and which calls were made.
 * fauxqs names queues `http://sqs.<region>.localhost:<port>/…`; clients here are given the server
 * as an explicit endpoint, as the CLI under test must be.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand, SQSClient,
} from '@aws-sdk/client-sqs';
import { CreateTopicCommand, PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

export interface Queues {
  sqs: SQSClient;
  sns: SNSClient;
  create(name: string, attributes?: Record<string, string>): Promise<{ url: string; arn: string }>;
  send(url: string, body: string): Promise<string>;
  /** ApproximateNumberOfMessages and ApproximateNumberOfMessagesNotVisible. */
  depth(url: string): Promise<{ visible: number; notVisible: number }>;
  /** A topic delivering to the queue, with or without raw message delivery; returns a publisher. */
  topic(name: string, queueArn: string, raw: boolean): Promise<(message: string) => Promise<void>>;
  close(): void;
}

export function queues(endpoint: string): Queues {
  const sqs = new SQSClient({ endpoint, region: 'us-east-1', credentials });
  const sns = new SNSClient({ endpoint, region: 'us-east-1', credentials });
  return {
    sqs, sns,
    async create(name, attributes = {}) {
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
      const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
      return { url: QueueUrl!, arn: Attributes!.QueueArn! };
    },
    async send(url, body) {
      const out = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
      return out.MessageId!;
    },
    async depth(url) {
      const { Attributes: a = {} } = await sqs.send(new GetQueueAttributesCommand({
        QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }));
      return { visible: Number(a.ApproximateNumberOfMessages), notVisible: Number(a.ApproximateNumberOfMessagesNotVisible) };
    },
    async topic(name, queueArn, raw) {
      const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: name }));
      await sns.send(new SubscribeCommand({
        TopicArn, Protocol: 'sqs', Endpoint: queueArn, ...(raw ? { Attributes: { RawMessageDelivery: 'true' } } : {}),
      }));
      return async (message) => {
        await sns.send(new PublishCommand({ TopicArn, Message: message }));
      };
    },
    close() {
      sqs.destroy();
      sns.destroy();
    },
  };
}

/** One SQS call seen by the proxy: its action and, for ReceiveMessage, the message ids returned. */
export interface SqsCall {
  action: string;
  received: string[];
  /** ChangeMessageVisibility: the timeout asked for. */
  visibility?: number;
  at: number;
}

/** A proxy in front of the SQS API that records every call (JSON protocol: the action is in X-Amz-Target). */
export class SqsProxy {
  readonly calls: SqsCall[] = [];
  url = '';
  #server: Server;

  private constructor(upstream: string) {
    const up = new URL(upstream);
    this.#server = createServer((req, res) => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const call: SqsCall = { action: target.split('.').pop() ?? target, received: [], at: Date.now() };
      this.calls.push(call);
      if (call.action === 'ChangeMessageVisibility') {
        const body: Buffer[] = [];
        req.on('data', (c: Buffer) => body.push(c));
        req.on('end', () => {
          try {
            call.visibility = (JSON.parse(Buffer.concat(body).toString('utf8')) as { VisibilityTimeout?: number }).VisibilityTimeout;
          } catch { /* not JSON */ }
        });
      }
      const fwd = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () => {
          const body = Buffer.concat(chunks);
          if (call.action === 'ReceiveMessage') {
            try {
              const out = JSON.parse(body.toString('utf8')) as { Messages?: Array<{ MessageId: string }> };
              call.received = (out.Messages ?? []).map((m) => m.MessageId);
            } catch { /* not JSON: nothing received */ }
          }
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          res.end(body);
        });
        upRes.on('error', () => res.destroy());
      });
      fwd.on('error', () => res.destroy());
      // A client giving up on a long poll (a stopped run) ends the upstream request too.
      res.on('close', () => fwd.destroy());
      req.pipe(fwd);
    });
  }

  static async start(upstream: string): Promise<SqsProxy> {
    const p = new SqsProxy(upstream);
    await new Promise<void>((resolve) => p.#server.listen(0, '127.0.0.1', resolve));
    p.url = `http://127.0.0.1:${(p.#server.address() as AddressInfo).port}`;
    return p;
  }

  /** How many times each message id was received. */
  receivedCounts(): Map<string, number> {
    const m = new Map<string, number>();
    for (const c of this.calls) for (const id of c.received) m.set(id, (m.get(id) ?? 0) + 1);
    return m;
  }

  count(action: string): number {
    return this.calls.filter((c) => c.action === action).length;
  }

  reset(): void {
    this.calls.length = 0;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A key as S3 puts it in a notification: each path segment form-encoded, a space as `+`. */
export function notificationKey(key: string): string {
  return key.split('/').map((s) => encodeURIComponent(s).replace(/%20/g, '+')).join('/');
}

/** An S3 → SQS notification (the shape of AWS's documented example) for one created object. */
export function s3Notification(bucket: string, key: string, etag: string | undefined, size: number | undefined, eventName = 'ObjectCreated:Put'): string {
  return JSON.stringify({
    Records: [{
      eventVersion: '2.1', eventSource: 'aws:s3', awsRegion: 'us-east-1', eventTime: '2024-03-01T00:00:00.000Z', eventName,
      userIdentity: { principalId: 'AIDAJDPLRKLG7UEXAMPLE' }, requestParameters: { sourceIPAddress: '127.0.0.1' },
      responseElements: { 'x-amz-request-id': 'C3D13FE58DE4C810', 'x-amz-id-2': 'FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD' },
      s3: {
        s3SchemaVersion: '1.0', configurationId: 'testConfigRule',
        bucket: { name: bucket, ownerIdentity: { principalId: 'A3NL1KOZZKExample' }, arn: `arn:aws:s3:::${bucket}` },
        object: { key: notificationKey(key), ...(size !== undefined ? { size } : {}), ...(etag !== undefined ? { eTag: etag } : {}), sequencer: '0055AED6DCD90281E5' },
      },
    }],
  });
}

/** An EventBridge "Object Created" event (AWS's documented example) delivered to SQS by a rule. */
export function eventBridgeNotification(bucket: string, key: string, etag: string, size: number): string {
  return JSON.stringify({
    version: '0', id: '17793124-05d4-b198-2fde-7ededc63b103', 'detail-type': 'Object Created', source: 'aws.s3',
    account: '111122223333', time: '2021-11-12T00:00:00Z', region: 'us-east-1', resources: [`arn:aws:s3:::${bucket}`],
    detail: {
      version: '0', bucket: { name: bucket },
      object: { key, size, etag, 'version-id': 'IYV3p45BT0ac8hjHg1houSdS1a.Mro8e', sequencer: '00617F08299329D189' },
      'request-id': 'N4N7GDK58NMKJ12R', requester: '123456789012', 'source-ip-address': '1.2.3.4', reason: 'PutObject',
    },
  });
}

/** S3's test message, sent when a notification configuration is saved. */
export function testEvent(bucket: string): string {
  return JSON.stringify({
    Service: 'Amazon S3', Event: 's3:TestEvent', Time: '2014-10-13T15:57:02.089Z', Bucket: bucket,
    RequestId: '5582815E1AEA5ADF', HostId: '8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE',
  });
}
