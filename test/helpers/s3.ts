/**
 * A real S3-compatible server for the tests (fauxqs, on 127.0.0.1 port 0) and a small proxy on
 * node:http in front of it that counts requests and injects faults: S3 error responses (503
 * SlowDown), connections reset mid-body, bodies that stall or trickle.
 */
import { createHash } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { buildApp } from 'fauxqs';
import { cloudTrailEvent } from './data.js';

/** Credentials and region for the tests, with nothing read from the machine's AWS configuration. */
export const AWS_TEST_ENV: Record<string, string> = {
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_REGION: 'us-east-1',
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
  AWS_EC2_METADATA_DISABLED: 'true',
  // Not disabled: the CLI must keep the SDK's Node-version notice off stderr by itself.
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: '',
};

export interface S3Server {
  url: string;
  client: S3Client;
  createBucket(name: string): Promise<void>;
  /** Puts an object; returns its ETag without quotes. */
  put(bucket: string, key: string, body: Buffer | string): Promise<string>;
  putMany(bucket: string, objects: Array<{ key: string; body: Buffer | string }>, concurrency?: number): Promise<void>;
  delete(bucket: string, key: string): Promise<void>;
  close(): Promise<void>;
}

export async function startS3(): Promise<S3Server> {
  // The notice is for the CLI under test to keep off its stderr; this process has no use for it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const app = buildApp({ logger: false });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  const client = new S3Client({
    endpoint: url, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  // Seeding goes around the SDK (a plain PUT, which fauxqs accepts unsigned): thousands of keys in a second.
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const { hostname, port } = new URL(url);
  const put = (bucket: string, key: string, body: Buffer | string): Promise<string> => new Promise((resolve, reject) => {
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    const path = `/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
    const req = httpRequest({ host: hostname, port, method: 'PUT', path, agent, headers: { 'content-length': data.length, 'content-type': 'application/octet-stream' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(String(res.headers.etag ?? '').replace(/"/g, '')) : reject(new Error(`PUT ${path}: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(data);
  });
  return {
    url, client, put,
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async putMany(bucket, objects, concurrency = 32) {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < objects.length) {
          const o = objects[next++]!;
          await put(bucket, o.key, o.body);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
    },
    async delete(bucket, key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
    async close() {
      client.destroy();
      agent.destroy();
      await app.close();
    },
  };
}

export interface ProxiedRequest {
  method: string;
  op: 'list' | 'get' | 'put' | 'other';
  bucket: string;
  key: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Body bytes the proxy has passed on to the client so far. */
  sent: number;
}

/** What the proxy does to one request instead of forwarding it plainly. */
export type Fault =
  | { status: number; code: string }
  | { resetAfter: number }
  | { stallAfter: number; ms: number }
  | { trickle: number; delayMs: number };

export class S3Proxy {
  readonly requests: ProxiedRequest[] = [];
  /** Decides a fault per request (after `before`). */
  fault: (r: ProxiedRequest) => Fault | undefined = () => undefined;
  /** Runs before a request is forwarded (deleting or replacing an object between list and get). */
  before: (r: ProxiedRequest) => Promise<void> | void = () => {};
  #server: Server;
  #upstream: URL;
  url = '';

  private constructor(upstream: string) {
    this.#upstream = new URL(upstream);
    this.#server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://proxy');
      const [, bucket = '', ...rest] = u.pathname.split('/');
      const key = decodeURIComponent(rest.join('/'));
      const op: ProxiedRequest['op'] = req.method === 'GET' && u.searchParams.get('list-type') === '2' ? 'list'
        : req.method === 'GET' && key ? 'get' : req.method === 'PUT' && key ? 'put' : 'other';
      const info: ProxiedRequest = { method: req.method ?? 'GET', op, bucket: decodeURIComponent(bucket), key, query: u.searchParams, headers: req.headers, sent: 0 };
      this.requests.push(info);
      void (async () => {
        await this.before(info);
        const fault = this.fault(info);
        if (fault && 'status' in fault) {
          req.resume();
          const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault.code}</Code><Message>injected by the test proxy</Message><RequestId>proxy</RequestId></Error>`;
          res.writeHead(fault.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
          res.end(body);
          return;
        }
        const up = httpRequest({
          host: this.#upstream.hostname, port: this.#upstream.port, method: req.method, path: req.url, headers: req.headers,
        }, (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          void this.#relay(upRes, res, fault, info);
        });
        up.on('error', () => res.destroy());
        req.pipe(up);
      })().catch(() => res.destroy());
    });
  }

  static async start(upstream: string): Promise<S3Proxy> {
    const p = new S3Proxy(upstream);
    await new Promise<void>((resolve) => p.#server.listen(0, '127.0.0.1', resolve));
    p.url = `http://127.0.0.1:${(p.#server.address() as AddressInfo).port}`;
    return p;
  }

  async #relay(upRes: NodeJS.ReadableStream, res: import('node:http').ServerResponse, fault: Fault | undefined, info: ProxiedRequest): Promise<void> {
    let sent = 0;
    const write = (chunk: Buffer): Promise<void> => new Promise((resolve) => {
      sent += chunk.length;
      info.sent = sent;
      if (!res.write(chunk)) res.once('drain', resolve);
      else resolve();
    });
    const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    try {
      for await (const c of upRes) {
        let chunk = c as Buffer;
        if (fault && 'resetAfter' in fault && sent + chunk.length > fault.resetAfter) {
          await write(chunk.subarray(0, Math.max(0, fault.resetAfter - sent)));
          // Let the bytes leave (and the client read them), then cut the connection as a failing network would.
          await pause(100);
          res.socket?.destroy();
          return;
        }
        if (fault && 'stallAfter' in fault && sent <= fault.stallAfter && sent + chunk.length > fault.stallAfter) {
          const cut = fault.stallAfter - sent;
          await write(chunk.subarray(0, cut));
          await pause(fault.ms);
          if (res.destroyed) return;
          chunk = chunk.subarray(cut);
        }
        if (fault && 'trickle' in fault) {
          for (let i = 0; i < chunk.length && !res.destroyed; i += fault.trickle) {
            await write(chunk.subarray(i, i + fault.trickle));
            await pause(fault.delayMs);
          }
          continue;
        }
        if (res.destroyed) return;
        await write(chunk);
      }
      res.end();
    } catch {
      res.destroy();
    }
  }

  /** Requests of one kind, optionally under a key prefix. */
  count(op: ProxiedRequest['op'], prefix?: string): number {
    return this.requests.filter((r) => r.op === op && (prefix === undefined || (op === 'list' ? (r.query.get('prefix') ?? '') : r.key).startsWith(prefix))).length;
  }

  reset(): void {
    this.requests.length = 0;
    this.fault = () => undefined;
    this.before = () => {};
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A CloudTrail key as AWS writes it: `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<time>_<id>.json.gz`. */
export function cloudTrailKey(account: string, region: string, day: number, n: number, service = 'CloudTrail'): string {
  const dd = String(day).padStart(2, '0');
  const hhmm = String(Math.floor(n / 12)).padStart(2, '0') + String((n % 12) * 5).padStart(2, '0');
  const id = createHash('sha256').update(`${account}${region}${day}${n}`).digest('hex').slice(0, 16).toUpperCase();
  return `AWSLogs/${account}/${service}/${region}/2024/03/${dd}/${account}_${service}_${region}_202403${dd}T${hhmm}Z_${id}.json.gz`;
}

/** A gzip CloudTrail delivery of `events` events numbered by `file`; returns the body and its eventIDs. */
export function cloudTrailBody(file: number, events: number): { body: Buffer; ids: string[] } {
  const records = Array.from({ length: events }, (_, i) => cloudTrailEvent(file, i));
  return { body: gzipSync(JSON.stringify({ Records: records }), { level: 1 }), ids: records.map((r) => r.eventID as string) };
}

/** Every line of `stderr` is pipe's own (no SDK notice, no Node warning, no stray console output). */
export function strayStderrLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !l.startsWith('pipe:'));
}
