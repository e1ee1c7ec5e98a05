/**
 * The two S3 calls the `s3` source makes (ListObjectsV2 and GetObject), behind a narrow interface so
 * tests can point the source at a local server and nothing else changes. The AWS SDK is imported on
 * first use, not when the registry loads, so `pipe --help`, `pipe list` and `pipe validate` stay fast.
 *
 * Requests are retried by the SDK's standard strategy (exponential backoff with full jitter on
 * throttling, 5xx and network errors, up to `maxAttempts`); what is left after that is mapped here
 * to a PipeError naming the bucket and key. Messages carry S3's error code and message only, which
 * never contain credentials.
 */
import type { Readable } from 'node:stream';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { PipeError, type ErrorCode } from '../errors.js';
import type { Logger } from '../types.js';
import { sdkLogger, type SdkLogger } from './aws-logger.js';
import { s3Sdk } from './aws-sdk.js';

export interface ListedObject {
  key: string;
  /** As S3 returns it, quoted: `"9b2cf535f27731c974343645a3985328"`. */
  etag: string;
  size: number;
  lastModified: Date;
}

export interface ListRequest {
  prefix: string;
  delimiter?: string;
  startAfter?: string;
  continuationToken?: string;
  maxKeys?: number;
}

export interface ListPage {
  objects: ListedObject[];
  /** Common prefixes of a delimiter listing. */
  prefixes: string[];
  /** Continuation token of the next page, if any. */
  next?: string;
}

export interface GetRequest {
  key: string;
  /** Only this version: GetObject with If-Match, so a replaced object is not read under the old identity. */
  etag: string;
  /** First byte to read (a ranged GET resuming a body). */
  offset?: number;
}

export interface S3Api {
  readonly bucket: string;
  list(req: ListRequest, signal: AbortSignal): Promise<ListPage>;
  get(req: GetRequest, signal: AbortSignal): Promise<Readable>;
}

export interface S3ClientOptions {
  bucket: string;
  region?: string;
  endpoint?: string;
  forcePathStyle: boolean;
  maxAttempts: number;
  /** Socket connect and inactivity timeout, ms. */
  timeout: number;
}

/** What the SDK's errors carry that the S3 callers (source, queue, sink) look at. */
export interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

const THROTTLING = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequests', 'TooManyRequestsException', 'RequestLimitExceeded']);

/** Text for an SDK error: `AccessDenied (HTTP 403): Access Denied, after 3 attempts`. */
function describe(err: SdkError): string {
  const status = err.$metadata?.httpStatusCode;
  const attempts = err.$metadata?.attempts;
  const name = err.name && err.name !== 'Error' ? err.name : err.code ?? 'error';
  const message = err.message && err.message !== err.name ? `: ${err.message}` : '';
  return `${name}${status ? ` (HTTP ${status})` : ''}${message}${attempts && attempts > 1 ? `, after ${attempts} attempts` : ''}`;
}

/** Maps what is left of an SDK error after its retries to a PipeError about one object. */
export function objectError(err: unknown, uri: string): PipeError {
  if (err instanceof PipeError) return err;
  const e = (err ?? {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  let code: ErrorCode = 'PIPE_ARTIFACT_UNREADABLE';
  let hint = '';
  if (e.name === 'NoSuchKey' || (status === 404 && e.name !== 'NoSuchBucket')) {
    code = 'PIPE_ARTIFACT_NOT_FOUND';
    hint = ' (deleted since it was listed)';
  } else if (e.name === 'PreconditionFailed' || status === 412) {
    code = 'PIPE_ARTIFACT_NOT_FOUND';
    hint = ' (replaced since it was listed: its ETag changed; the new version is collected when listed)';
  } else if (THROTTLING.has(e.name ?? '') || status === 503 || status === 429) {
    code = 'PIPE_SOURCE_THROTTLED';
  } else if (e.name === 'AccessDenied' || status === 403) {
    hint = ' (reading needs s3:GetObject on the object, and kms:Decrypt if it is encrypted with a KMS key)';
  }
  return new PipeError(code, `${uri}: ${describe(e)}${hint}`, { cause: err });
}

/** Maps a failed listing to a PipeError naming the bucket and prefix. */
export function listError(err: unknown, bucket: string, prefix: string): PipeError {
  if (err instanceof PipeError) return err;
  const e = (err ?? {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  const where = `listing s3://${bucket}/${prefix}`;
  if (e.name === 'NoSuchBucket') return new PipeError('PIPE_SOURCE_FAILED', `${where}: bucket ${bucket} does not exist (NoSuchBucket)`, { cause: err });
  if (e.name === 'AccessDenied' || status === 403) {
    return new PipeError('PIPE_SOURCE_FAILED', `${where}: ${describe(e)} (listing needs s3:ListBucket on arn:aws:s3:::${bucket})`, { cause: err });
  }
  if (e.name === 'CredentialsProviderError' || /Could not load credentials/i.test(e.message ?? '')) {
    return new PipeError('PIPE_SOURCE_FAILED', `${where}: no AWS credentials found (environment, profile, SSO or instance role)`, { cause: err });
  }
  const code: ErrorCode = THROTTLING.has(e.name ?? '') || status === 503 ? 'PIPE_SOURCE_THROTTLED' : 'PIPE_SOURCE_FAILED';
  return new PipeError(code, `${where}: ${describe(e)}`, { cause: err });
}

/**
 * The configuration of every S3 client pipe makes (the source, the queue's HeadObject, the sink):
 * the region given, else `fallbackRegion`, else the SDK's chain (AWS_REGION, the profile; S3 then
 * follows a bucket's region redirect anyway); the endpoint given, else the SDK reads
 * AWS_ENDPOINT_URL_S3 (and AWS_ENDPOINT_URL) itself; timeouts; the shared logger.
 */
export async function s3ClientConfig(sdk: typeof import('@aws-sdk/client-s3'), opts: S3ClientOptions, logger: SdkLogger, fallbackRegion?: string): Promise<S3ClientConfig> {
  let region = opts.region ?? fallbackRegion;
  if (!region) {
    const probe = new sdk.S3Client({ logger });
    region = await probe.config.region().catch(() => 'us-east-1');
    probe.destroy();
  }
  return {
    region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    forcePathStyle: opts.forcePathStyle,
    followRegionRedirects: true,
    maxAttempts: opts.maxAttempts,
    logger,
    requestHandler: { connectionTimeout: opts.timeout, socketTimeout: opts.timeout, logger },
  };
}

/** An S3Api over the real AWS SDK v3 client. The default credential chain applies. */
export async function sdkS3Api(opts: S3ClientOptions, log: Logger): Promise<S3Api> {
  const sdk = s3Sdk();
  const client = new sdk.S3Client(await s3ClientConfig(sdk, opts, sdkLogger(log)));
  const bucket = opts.bucket;
  return {
    bucket,
    async list(req, signal) {
      const out = await client.send(new sdk.ListObjectsV2Command({
        Bucket: bucket, Prefix: req.prefix,
        ...(req.delimiter ? { Delimiter: req.delimiter } : {}),
        ...(req.startAfter ? { StartAfter: req.startAfter } : {}),
        ...(req.continuationToken ? { ContinuationToken: req.continuationToken } : {}),
        ...(req.maxKeys ? { MaxKeys: req.maxKeys } : {}),
      }), { abortSignal: signal }).catch((err: unknown) => {
        throw listError(err, bucket, req.prefix);
      });
      return {
        objects: (out.Contents ?? []).map((o) => ({
          key: o.Key ?? '', etag: o.ETag ?? '', size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0),
        })),
        prefixes: (out.CommonPrefixes ?? []).map((p) => p.Prefix ?? '').filter(Boolean),
        ...(out.IsTruncated && out.NextContinuationToken ? { next: out.NextContinuationToken } : {}),
      };
    },
    async get(req, signal) {
      const out = await client.send(new sdk.GetObjectCommand({
        Bucket: bucket, Key: req.key, IfMatch: req.etag,
        ...(req.offset ? { Range: `bytes=${req.offset}-` } : {}),
      }), { abortSignal: signal }).catch((err: unknown) => {
        throw objectError(err, `s3://${bucket}/${req.key}`);
      });
      const body = out.Body as Readable;
      // A store that ignores Range would send the whole object again: bytes twice, so refuse it.
      if (req.offset && !out.ContentRange?.startsWith(`bytes ${req.offset}-`)) {
        body.destroy();
        throw new PipeError('PIPE_ARTIFACT_UNREADABLE', `s3://${bucket}/${req.key}: resuming at byte ${req.offset}: the server answered without the range asked for (Content-Range: ${out.ContentRange ?? 'none'})`);
      }
      return body;
    },
  };
}
