/**
 * The `s3` sink: the chunks of the jsonl sink, as objects under a bucket prefix, exactly once.
 *
 * S3 has no rename, so a staging key and a state record take its place:
 * 1. Rows are appended (serialized, gzipped per member) to chunk files spooled on local disk,
 *    `<tmpdir>/pipe-s3-sink/<state id>/<pipeline>/<run id>/`, so memory stays bounded.
 * 2. When a chunk rotates (maxRows, maxBytes, flushInterval, end of run) each of its files is
 *    uploaded with PutObject to a staging key, `<prefix>_pipe-tmp/<pipeline>/<run id>/<name>`.
 * 3. ONE state transaction records every file as {tmp: s3://bucket/<staging key>, final:
 *    s3://bucket/<final key>} with the positions of every batch the chunk holds. This is the commit
 *    point: before it nothing counts, after it the chunk is delivered.
 * 4. Each staging object is copied (CopyObject, server side) to its final key,
 *    `<prefix>[dt=…/]<run id>-<sequence>.jsonl[.gz]`, then deleted; then the record is closed.
 * Final keys are deterministic and unique per run, so a copy done twice writes the same bytes to the
 * same key: publishing is idempotent, and a reader never sees a partial object (PUT and COPY are
 * atomic). On open, the run lists the runs with staging objects, then notes which runs are live (a
 * run not live then can commit nothing later), then rolls forward every recorded chunk (copy if the
 * staging object is still there; if it is gone the final exists already), then deletes the staging
 * objects of the listed runs not live: those no commit recorded. Staging objects of live runs (other workers on shared state) are never touched.
 * The prefix remembers which state id wrote it (`<prefix>_pipe-tmp/<pipeline>.owner.json`): a run
 * with another state would deliver everything again, so it is refused (PIPE_STATE_MISMATCH) unless
 * --accept-new-state. Row errors go to `<prefix>_errors/` in the same chunk, exactly once too.
 * Names starting with `_` are skipped by Athena, Hive and Spark readers of the prefix.
 */
import { mkdir, rm, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PipeError } from '../errors.js';
import { failpoint } from '../failpoint.js';
import { quietLogger } from '../ping.js';
import type { ComponentSpec } from '../spec.js';
import type { ChunkFile } from '../state/store.js';
import type { ComponentContext, Sink, SinkContext } from '../types.js';
import { ChunkFileWriter, discardUnrecorded, runDirs } from './chunk.js';
import { ChunkedSink, partitionFileName } from './chunked.js';
import { sdkSinkS3Api, type SinkS3Api, type SinkS3Options } from './s3-api.js';
import { checkS3SinkOwner, discardStaging, eachLimited, stagingRuns, STAGING } from './s3-recovery.js';

export const spec: ComponentSpec = {
  kind: 'sink',
  type: 's3',
  summary: 'The chunks of the jsonl sink as objects under a bucket prefix, committed exactly once through staging keys.',
  options: {
    bucket: { type: 'string', required: true, example: 'my-lake', description: 'Bucket name (not a URL; the key prefix goes in `prefix`).' },
    prefix: { type: 'string', default: '', example: 'cloudtrail/', description: 'Key prefix of every object written (a `/` is added if missing). Staging objects go under `<prefix>_pipe-tmp/`, row errors under `<prefix>_errors/`.' },
    region: { type: 'string', example: 'us-east-1', description: "Bucket region. Default: the SDK's chain (AWS_REGION, profile), else us-east-1; S3 region redirects are followed." },
    endpoint: { type: 'string', example: 'http://127.0.0.1:9000', description: 'An S3-compatible endpoint. Default: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL if set (read by the SDK), else AWS.' },
    forcePathStyle: { type: 'boolean', default: false, description: 'Path-style requests (http://host/bucket/key), as MinIO and most S3-compatible stores need.' },
    maxRows: { type: 'integer', default: 100_000, min: 1, description: 'Rotate the chunk after this many rows.' },
    // CopyObject publishes objects of up to 5 GB: a chunk rotates well before that.
    maxBytes: { type: 'size', default: 64 * 1024 * 1024, min: 1, max: 4 * 1024 ** 3, example: '64MiB', description: 'Rotate the chunk after this many uncompressed bytes (at most 4GiB).' },
    flushInterval: { type: 'duration', default: 1000, min: 10, example: '1s', description: 'Commit what is written at least this often.' },
    gzip: { type: 'boolean', default: true, description: 'Write `.jsonl.gz` objects.' },
    partition: { type: 'enum', values: ['none', 'day', 'hour'], default: 'none', description: 'Key partitions by `_time`: `dt=YYYY-MM-DD/` (day) or `dt=YYYY-MM-DD/hour=HH/` (hour).' },
    maxAttempts: { type: 'integer', default: 5, min: 1, max: 20, description: 'Attempts per request (throttling, 5xx, network errors; backoff with jitter) before the run fails.' },
    timeout: { type: 'duration', default: '30s', min: 100, description: 'Connect timeout, and how long a request may send or receive nothing.' },
  },
  check(options) {
    const problems: Array<{ option: string; message: string }> = [];
    const bucket = options.bucket as string | undefined;
    if (bucket !== undefined && (bucket.includes('/') || bucket.includes(':') && !bucket.startsWith('arn:'))) {
      problems.push({ option: 'bucket', message: `expected a bucket name such as my-lake, got '${bucket}' (a key prefix goes in prefix)` });
    }
    const endpoint = options.endpoint as string | undefined;
    if (endpoint !== undefined && !/^https?:\/\/[^/\s]+/.test(endpoint)) {
      problems.push({ option: 'endpoint', message: `expected a URL such as http://127.0.0.1:9000, got '${endpoint}'` });
    }
    return problems;
  },
  ping: (o) => pingSink(o as unknown as S3SinkOptions),
};

export interface S3SinkOptions {
  bucket: string;
  prefix: string;
  region?: string;
  endpoint?: string;
  forcePathStyle: boolean;
  maxRows: number;
  maxBytes: number;
  flushInterval: number;
  gzip: boolean;
  partition: 'none' | 'day' | 'hour';
  maxAttempts: number;
  timeout: number;
}

/** `cloudtrail` → `cloudtrail/`; '' stays ''. */
export function normalizePrefix(prefix: string): string {
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

interface Open {
  writer: ChunkFileWriter;
  staging: string;
}

export class S3Sink extends ChunkedSink<Open> {
  #opts: S3SinkOptions;
  #makeApi: () => Promise<SinkS3Api>;
  #api: SinkS3Api | undefined;
  #prefix: string;
  #spool = '';

  constructor(opts: S3SinkOptions, makeApi: () => Promise<SinkS3Api>) {
    super(opts);
    this.#opts = opts;
    this.#makeApi = makeApi;
    this.#prefix = normalizePrefix(opts.prefix);
  }

  #uri(key: string): string {
    return `s3://${this.#opts.bucket}/${key}`;
  }

  /** The key of an s3:// uri in this sink's bucket, else undefined. */
  #keyOf(uri: string): string | undefined {
    const head = `s3://${this.#opts.bucket}/`;
    return uri.startsWith(head) ? uri.slice(head.length) : undefined;
  }

  protected async recover(ctx: SinkContext): Promise<void> {
    const api = (this.#api = await this.#makeApi());
    const spoolRoot = join(tmpdir(), 'pipe-s3-sink', safe(ctx.store.id), safe(ctx.pipeline));
    this.#spool = join(spoolRoot, ctx.runId);
    await mkdir(this.#spool, { recursive: true });
    await checkS3SinkOwner(api, this.#prefix, ctx);
    // Run prefixes (and spool directories) first, live runs second: a listed run not live then is
    // gone, not registering now. A run not live can commit nothing later, so every chunk it recorded
    // is among the pending ones read next, and its staging objects are safe to delete once those are published.
    const listed = await stagingRuns(api, this.#prefix, ctx.pipeline, ctx.signal);
    const spooled = await runDirs(spoolRoot);
    const live = await ctx.store.liveRuns(ctx.pipeline);
    live.add(ctx.runId);
    const allPending = await ctx.store.pendingChunks(ctx.pipeline);
    const pending = allPending.filter((f) => this.#keyOf(f.tmp) !== undefined && this.#keyOf(f.final) !== undefined);
    if (pending.length < allPending.length) {
      ctx.log.warn(`${allPending.length - pending.length} committed chunk(s) of pipeline ${ctx.pipeline} belong to another sink (not s3://${this.#opts.bucket}/): left for it to publish`);
    }
    const missing = await this.#publish(pending, ctx.signal);
    for (const m of missing) ctx.log.warn(`committed chunk ${m} is missing: neither its staging object nor its final object exists`);
    await ctx.store.finishChunks(ctx.pipeline, pending);
    const removed = await discardStaging(api, listed, live, ctx.signal);
    await discardUnrecorded(spoolRoot, spooled, live);
    if (pending.length || removed) {
      ctx.log.info(`recovered sink: ${pending.length} committed chunk(s) rolled forward, ${removed} uncommitted staging object(s) discarded`);
    }
  }

  protected openFile(ctx: SinkContext, partition: string, name: string): Open {
    const stagingName = partitionFileName(partition, name);
    const final = `${this.#prefix}${partition ? `${partition}/` : ''}${name}`;
    return {
      writer: new ChunkFileWriter(join(this.#spool, `${stagingName}.tmp`), final, this.chunkOptions.gzip),
      staging: `${this.#prefix}${STAGING}/${ctx.pipeline}/${ctx.runId}/${stagingName}`,
    };
  }

  protected async stage(files: Open[], ctx: SinkContext): Promise<ChunkFile[]> {
    const api = this.#api!;
    const sealed: Array<{ local: ChunkFile; staging: string }> = [];
    try {
      for (const f of files) sealed.push({ local: await f.writer.seal(), staging: f.staging });
    } catch (err) {
      throw new PipeError('PIPE_SINK_FAILED', `s3 sink s3://${this.#opts.bucket}/${this.#prefix}: spooling a chunk to ${this.#spool}: ${(err as Error).message}`, { cause: err });
    }
    const contentType = this.chunkOptions.gzip ? 'application/gzip' : 'application/x-ndjson';
    // Every file is uploaded before the commit: a failure here commits nothing, and the staging
    // objects already uploaded are discarded by the next run's recovery.
    await eachLimited(sealed, async (s) => api.putFile(s.staging, s.local.tmp, (await stat(s.local.tmp)).size, contentType, ctx.signal));
    return sealed.map((s) => ({ tmp: this.#uri(s.staging), final: this.#uri(s.local.final), rows: s.local.rows, bytes: s.local.bytes }));
  }

  protected async publish(committed: ChunkFile[], files: Open[], ctx: SinkContext): Promise<void> {
    for (const f of files) await rm(f.writer.tmp, { force: true });
    const missing = await this.#publish(committed, ctx.signal);
    if (missing.length) throw new PipeError('PIPE_SINK_FAILED', `s3 sink: committed chunk ${missing[0]} vanished before it was published (its staging object was deleted by something else)`);
  }

  protected override async closed(): Promise<void> {
    // Staging objects uploaded but not known committed stay: the next run's recovery decides.
    if (this.#spool) {
      await rm(this.#spool, { recursive: true, force: true });
      // The pipeline's and the state's spool directories too, unless another run still uses them.
      await rmdir(dirname(this.#spool)).then(() => rmdir(dirname(dirname(this.#spool)))).catch(() => undefined);
    }
    this.#api?.close();
  }

  /** Copies recorded chunks from staging to final and deletes staging; returns the finals found nowhere. */
  async #publish(files: ChunkFile[], signal: AbortSignal): Promise<string[]> {
    const api = this.#api!;
    const missing: string[] = [];
    await eachLimited(files, async (f) => {
      const staging = this.#keyOf(f.tmp)!;
      const final = this.#keyOf(f.final)!;
      // Gone from staging: published already (by an earlier attempt, or another worker's recovery).
      if (!(await api.copy(staging, final, signal)) && !(await api.exists(final, signal))) missing.push(f.final);
      failpoint('sink:after-copy');
      await api.delete(staging, signal);
    });
    return missing;
  }
}

/** A name usable as one path segment. */
function safe(s: string): string {
  return s.replace(/[^\w.-]/g, '_');
}

function apiOptions(o: S3SinkOptions): SinkS3Options {
  return {
    bucket: o.bucket, forcePathStyle: o.forcePathStyle, maxAttempts: o.maxAttempts, timeout: o.timeout,
    ...(o.region ? { region: o.region } : {}), ...(o.endpoint ? { endpoint: o.endpoint } : {}),
  };
}

/** `pipe validate --ping`: one List call of at most one key under the prefix (s3:ListBucket), with the client a run uses. */
async function pingSink(o: S3SinkOptions): Promise<string> {
  const api = await sdkSinkS3Api(apiOptions(o), quietLogger);
  try {
    const prefix = normalizePrefix(o.prefix);
    await api.list(prefix, { maxKeys: 1 }, AbortSignal.timeout(Math.max(o.timeout * o.maxAttempts, 5000)));
    return `ok: s3://${o.bucket}/${prefix} can be listed`;
  } finally {
    api.close();
  }
}

export function create(options: Record<string, unknown>, ctx: ComponentContext): Sink {
  const o = options as unknown as S3SinkOptions;
  return new S3Sink(o, () => sdkSinkS3Api(apiOptions(o), ctx.log));
}
