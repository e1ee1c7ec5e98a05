/**
 * The S3 calls the `s3` sink makes (PutObject, CopyObject, DeleteObject, HeadObject, GetObject of a
 * small record, ListObjectsV2), behind a narrow interface so tests can point the sink at a local
 * server. The AWS SDK is imported on first use, so `pipe list` and `pipe validate` stay fast.
 *
 * Requests are retried by the SDK's standard strategy (backoff with jitter on throttling, 5xx and
 * network errors, up to `maxAttempts`), except uploads: a file stream cannot be replayed by the SDK,
 * so an upload is retried here with a fresh stream of the spooled file each attempt. What is left
 * after the retries becomes a PIPE_SINK_FAILED naming the operation, bucket and key, with S3's
 * error code and message only (never credentials).
 */
import { createReadStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PipeError } from '../errors.js';
import { sdkLogger } from '../sources/aws-logger.js';
import { s3ClientConfig, type S3ClientOptions, type SdkError } from '../sources/s3-client.js';
import type { Logger } from '../types.js';
import { s3Sdk } from '../sources/aws-sdk.js';

export interface SinkS3Api {
  readonly bucket: string;
  /** Uploads a local file of `size` bytes to `key`. */
  putFile(key: string, file: string, size: number, contentType: string, signal: AbortSignal): Promise<void>;
  putText(key: string, text: string, signal: AbortSignal): Promise<void>;
  /** The object's text, or undefined when there is no such key. */
  getText(key: string, signal: AbortSignal): Promise<string | undefined>;
  /** Copies `from` to `to` in the bucket; false when `from` does not exist. */
  copy(from: string, to: string, signal: AbortSignal): Promise<boolean>;
  exists(key: string, signal: AbortSignal): Promise<boolean>;
  /** Deletes a key (a key already gone is not an error). */
  delete(key: string, signal: AbortSignal): Promise<void>;
  /** One page of keys (and common prefixes with a delimiter) under a prefix. */
  list(prefix: string, opts: { delimiter?: string; maxKeys?: number; continuationToken?: string }, signal: AbortSignal): Promise<{ keys: string[]; prefixes: string[]; next?: string }>;
  close(): void;
}

/** The sink's S3 client is configured as the source's. */
export type SinkS3Options = S3ClientOptions;

const THROTTLING = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequests', 'RequestLimitExceeded', 'RequestTimeout', 'InternalError', 'ServiceUnavailable']);

function isNotFound(err: unknown): boolean {
  const e = err as SdkError;
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || (e.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket');
}

/** Worth another upload attempt: throttling, 5xx, a reset or timed-out connection. */
export function isTransient(err: unknown): boolean {
  const e = err as SdkError;
  const status = e.$metadata?.httpStatusCode;
  if (THROTTLING.has(e.name ?? '') || status === 429 || (status !== undefined && status >= 500)) return true;
  return status === undefined && /ECONNRESET|EPIPE|ETIMEDOUT|ECONNREFUSED|socket hang up|TimeoutError|aborted/i.test(`${e.name ?? ''} ${e.code ?? ''} ${e.message ?? ''}`);
}

/** `AccessDenied (HTTP 403): Access Denied, after 3 attempts`. */
function describe(err: SdkError, attempts?: number): string {
  const status = err.$metadata?.httpStatusCode;
  const tries = attempts ?? err.$metadata?.attempts;
  const name = err.name && err.name !== 'Error' ? err.name : err.code ?? 'error';
  const message = err.message && err.message !== err.name ? `: ${err.message}` : '';
  return `${name}${status ? ` (HTTP ${status})` : ''}${message}${tries && tries > 1 ? `, after ${tries} attempts` : ''}`;
}

const HINTS: Record<string, string> = {
  PutObject: 's3:PutObject',
  CopyObject: 's3:PutObject on the destination and s3:GetObject on the staging key',
  DeleteObject: 's3:DeleteObject',
  GetObject: 's3:GetObject',
  HeadObject: 's3:GetObject',
  ListObjectsV2: `s3:ListBucket`,
};

/** What is left of an SDK error after its retries, as a PipeError naming the operation and the key. */
export function sinkError(err: unknown, op: string, bucket: string, key: string, attempts?: number): PipeError {
  if (err instanceof PipeError) return err;
  const e = (err ?? {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  let hint = '';
  if (e.name === 'NoSuchBucket') hint = ` (bucket ${bucket} does not exist)`;
  else if (e.name === 'AccessDenied' || status === 403) hint = ` (the s3 sink needs ${HINTS[op] ?? op} on arn:aws:s3:::${bucket})`;
  else if (e.name === 'CredentialsProviderError' || /Could not load credentials/i.test(e.message ?? '')) hint = ' (no AWS credentials found: environment, profile, SSO or instance role)';
  return new PipeError('PIPE_SINK_FAILED', `s3 sink: ${op} s3://${bucket}/${key}: ${describe(e, attempts)}${hint}`, { cause: err });
}

/** A SinkS3Api over the real AWS SDK v3 client. The default credential chain applies. */
export async function sdkSinkS3Api(opts: SinkS3Options, log: Logger): Promise<SinkS3Api> {
  const sdk = s3Sdk();
  const config = await s3ClientConfig(sdk, opts, sdkLogger(log));
  const client = new sdk.S3Client(config);
  // Uploads are retried below, each attempt with a fresh stream of the file.
  const uploader = new sdk.S3Client({ ...config, maxAttempts: 1 });
  const bucket = opts.bucket;
  const fail = (op: string, key: string) => (err: unknown): never => {
    throw sinkError(err, op, bucket, key);
  };
  const copySource = (key: string): string => `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  return {
    bucket,
    async putFile(key, file, size, contentType, signal) {
      for (let attempt = 1; ; attempt++) {
        const body = createReadStream(file);
        try {
          await uploader.send(new sdk.PutObjectCommand({
            Bucket: bucket, Key: key, Body: body, ContentLength: size, ContentType: contentType,
          }), { abortSignal: signal });
          return;
        } catch (err) {
          if (attempt >= opts.maxAttempts || !isTransient(err) || signal.aborted) throw sinkError(err, 'PutObject', bucket, key, attempt);
          // Full jitter over an exponential ceiling, as the SDK's standard strategy does.
          await sleep(Math.random() * Math.min(20_000, 100 * 2 ** attempt), undefined, { signal });
        } finally {
          body.destroy();
        }
      }
    },
    async putText(key, text, signal) {
      await client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: text, ContentType: 'application/json' }), { abortSignal: signal })
        .catch(fail('PutObject', key));
    },
    async getText(key, signal) {
      try {
        const out = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
        return await out.Body!.transformToString('utf8');
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw sinkError(err, 'GetObject', bucket, key);
      }
    },
    async copy(from, to, signal) {
      try {
        await client.send(new sdk.CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: copySource(from) }), { abortSignal: signal });
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw sinkError(err, 'CopyObject', bucket, `${from} to ${to}`);
      }
    },
    async exists(key, signal) {
      try {
        await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw sinkError(err, 'HeadObject', bucket, key);
      }
    },
    async delete(key, signal) {
      await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal })
        .catch((err: unknown) => {
          if (!isNotFound(err)) fail('DeleteObject', key)(err);
        });
    },
    async list(prefix, o, signal) {
      const out = await client.send(new sdk.ListObjectsV2Command({
        Bucket: bucket, Prefix: prefix,
        ...(o.delimiter ? { Delimiter: o.delimiter } : {}),
        ...(o.maxKeys ? { MaxKeys: o.maxKeys } : {}),
        ...(o.continuationToken ? { ContinuationToken: o.continuationToken } : {}),
      }), { abortSignal: signal }).catch(fail('ListObjectsV2', prefix));
      return {
        keys: (out.Contents ?? []).map((c) => c.Key ?? '').filter(Boolean),
        prefixes: (out.CommonPrefixes ?? []).map((p) => p.Prefix ?? '').filter(Boolean),
        ...(out.IsTruncated && out.NextContinuationToken ? { next: out.NextContinuationToken } : {}),
      };
    },
    close() {
      client.destroy();
      uploader.destroy();
    },
  };
}
