/**
 * The SQS calls queue mode makes (ReceiveMessage, DeleteMessage, ChangeMessageVisibility,
 * GetQueueAttributes) and the HeadObject it needs for a notification without an ETag, behind a
 * narrow interface so tests can script them. The AWS SDK is imported on first use.
 *
 * The client is given the SQS endpoint explicitly when the user set one (AWS_ENDPOINT_URL_SQS,
 * else AWS_ENDPOINT_URL): without it the SDK sends each request to the queue URL's own host, which
 * for a local emulator (`http://sqs.us-east-1.localhost:4566/…`) may not resolve. The region comes
 * from an AWS queue URL, else the SDK's chain. Requests are retried by the SDK (maxAttempts); what
 * is left is mapped to a PipeError naming the queue and the call.
 */
import { PipeError, type ErrorCode } from '../errors.js';
import type { Logger } from '../types.js';
import { sdkLogger } from './aws-logger.js';
import { transientFault } from './cloudwatch-api.js';
import { s3ClientConfig, type S3ClientOptions } from './s3-client.js';
import { s3Sdk, sqsSdk } from './aws-sdk.js';

export interface QueueMessage {
  id: string;
  receipt: string;
  body: string;
}

/** The SQS calls queue mode makes, behind a narrow interface. */
export interface QueueApi {
  readonly url: string;
  receive(req: { max: number; waitSeconds: number; visibilitySeconds: number }, signal: AbortSignal): Promise<QueueMessage[]>;
  delete(receipt: string): Promise<void>;
  setVisibility(receipt: string, seconds: number): Promise<void>;
  /** ApproximateNumberOfMessages and ApproximateNumberOfMessagesNotVisible (GetQueueAttributes). */
  depth(signal: AbortSignal): Promise<{ visible: number; inFlight: number }>;
}

export interface HeadResult {
  etag: string;
  size: number;
  lastModified: Date;
}

export interface QueueDeps {
  queue: QueueApi;
  /** HeadObject in the source's bucket; undefined when the object is gone. */
  head(key: string, signal: AbortSignal): Promise<HeadResult | undefined>;
}

interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

const NOT_FOUND = /QueueDoesNotExist|NonExistentQueue/;

/** Maps what is left of a failed SQS call to a PipeError naming the queue. */
export function queueError(err: unknown, url: string, call: string): PipeError {
  if (err instanceof PipeError) return err;
  const e = (err ?? {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name && e.name !== 'Error' ? e.name : e.Code ?? e.code ?? 'error';
  const attempts = e.$metadata?.attempts;
  const what = `${name}${status ? ` (HTTP ${status})` : ''}${e.message && e.message !== name ? `: ${e.message}` : ''}${attempts && attempts > 1 ? `, after ${attempts} attempts` : ''}`;
  const where = `queue ${url}: ${call}`;
  if (NOT_FOUND.test(name) || NOT_FOUND.test(e.message ?? '')) {
    return new PipeError('PIPE_SOURCE_FAILED', `${where}: the queue does not exist (${name}): check the queue URL, its account and region`, { cause: err });
  }
  if (/AccessDenied|NotAuthorized|KmsAccessDenied/.test(name) || status === 403) {
    return new PipeError('PIPE_SOURCE_FAILED', `${where}: ${what} (queue mode needs sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility and sqs:GetQueueAttributes on the queue, and kms:Decrypt if it is encrypted with a KMS key)`, { cause: err });
  }
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(e.message ?? '')) {
    return new PipeError('PIPE_SOURCE_FAILED', `${where}: no AWS credentials found (environment, profile, SSO or instance role)`, { cause: err });
  }
  const code: ErrorCode = transientFault(err) === 'throttled' || /OverLimit|RequestThrottled/.test(name) ? 'PIPE_SOURCE_THROTTLED' : 'PIPE_SOURCE_FAILED';
  return new PipeError(code, `${where}: ${what}`, { cause: err });
}

/** The region of an AWS queue URL (`https://sqs.eu-west-1.amazonaws.com/…`), else undefined. */
export function queueRegion(url: string): string | undefined {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return undefined;
  }
  if (host === 'queue.amazonaws.com') return 'us-east-1';
  const m = /^sqs(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/.exec(host)
    ?? /^([a-z0-9-]+)\.queue\.amazonaws\.com(?:\.cn)?$/.exec(host)
    ?? /\.sqs\.([a-z0-9-]+)\.vpce\.amazonaws\.com$/.exec(host);
  return m?.[1];
}

/** The SQS endpoint the user configured for the SDK, if any (explicit, so requests do not go to the queue URL's host). */
export function sqsEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true') return undefined;
  return env.AWS_ENDPOINT_URL_SQS || env.AWS_ENDPOINT_URL || undefined;
}

/** The queue, and the S3 client's options (bucket region and the rest, for HeadObject). */
export interface QueueClientOptions extends S3ClientOptions {
  queue: string;
}

/** SQS and HeadObject over the real AWS SDK v3 clients, imported on first use. */
export async function sdkQueueDeps(o: QueueClientOptions, log: Logger): Promise<QueueDeps> {
  const sqs = sqsSdk();
  const logger = sdkLogger(log);
  let region = queueRegion(o.queue);
  if (!region) {
    const probe = new sqs.SQSClient({ logger });
    region = await probe.config.region().catch(() => undefined) ?? o.region ?? 'us-east-1';
    probe.destroy();
  }
  const endpoint = sqsEndpoint();
  const client = new sqs.SQSClient({
    region,
    ...(endpoint ? { endpoint } : {}),
    maxAttempts: o.maxAttempts,
    logger,
    // A long poll holds the socket for up to 20 s without a byte.
    requestHandler: { connectionTimeout: o.timeout, socketTimeout: Math.max(o.timeout, 30_000), logger },
  });
  const url = o.queue;
  let s3: Promise<import('@aws-sdk/client-s3').S3Client> | undefined;
  const queue: QueueApi = {
    url,
    async receive(req, signal) {
      const out = await client.send(new sqs.ReceiveMessageCommand({
        QueueUrl: url, MaxNumberOfMessages: req.max, WaitTimeSeconds: req.waitSeconds, VisibilityTimeout: req.visibilitySeconds,
      }), { abortSignal: signal });
      return (out.Messages ?? []).flatMap((m) => (m.MessageId && m.ReceiptHandle
        ? [{ id: m.MessageId, receipt: m.ReceiptHandle, body: m.Body ?? '' }] : []));
    },
    async delete(receipt) {
      await client.send(new sqs.DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: receipt }));
    },
    async setVisibility(receipt, seconds) {
      await client.send(new sqs.ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: receipt, VisibilityTimeout: seconds }));
    },
    async depth(signal) {
      const out = await client.send(new sqs.GetQueueAttributesCommand({
        QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }), { abortSignal: signal });
      const a = out.Attributes ?? {};
      return { visible: Number(a.ApproximateNumberOfMessages ?? 0), inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) };
    },
  };
  return {
    queue,
    async head(key, signal) {
      const sdk = s3Sdk();
      s3 ??= s3ClientConfig(sdk, o, logger, region).then((config) => new sdk.S3Client(config));
      const s3Client = await s3;
      try {
        const h = await s3Client.send(new sdk.HeadObjectCommand({ Bucket: o.bucket, Key: key }), { abortSignal: signal });
        return { etag: h.ETag ?? '', size: h.ContentLength ?? 0, lastModified: h.LastModified ?? new Date() };
      } catch (err) {
        const e = err as SdkError;
        if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return undefined;
        throw err;
      }
    },
  };
}

/** `pipe validate --ping` in queue mode: GetQueueAttributes on the queue, with the client a run uses. Receives nothing. */
export async function pingQueue(o: QueueClientOptions, log: Logger): Promise<string> {
  const deps = await sdkQueueDeps(o, log);
  const d = await deps.queue.depth(AbortSignal.timeout(Math.max(o.timeout * o.maxAttempts, 5000))).catch((err: unknown) => {
    throw queueError(err, o.queue, 'GetQueueAttributes');
  });
  return `ok: queue ${o.queue} can be read (${d.visible} messages waiting, ${d.inFlight} in flight)`;
}
