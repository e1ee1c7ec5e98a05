/**
 * A CloudWatch Logs server on node:http that speaks the service's real wire protocol (awsJson1.1:
 * `POST /`, `X-Amz-Target: Logs_20140328.<Operation>`, `Content-Type: application/x-amz-json-1.1`,
 * errors as `{"__type": "...", "message": "..."}` with the `x-amzn-ErrorType` header), so the real
 * SDK client can talk to it. It serves FilterLogEvents, DescribeLogGroups and DescribeLogStreams with
 * opaque pagination tokens and small pages; FilterLogEvents can answer empty pages that still carry a
 * token, as the service does. Events can be put at any time with any timestamp (late events); faults
 * (throttling, 5xx, connection resets) are injected per request; every request is logged with its
 * arrival time.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StoredEvent {
  group: string;
  stream: string;
  eventId: string;
  timestamp: number;
  ingestionTime: number;
  message: string;
  seq: number;
}

export interface RequestRecord {
  /** Arrival, epoch ms (performance.timeOrigin + performance.now(), sub-millisecond). */
  at: number;
  operation: string;
  input: Record<string, unknown>;
  status: number;
  error?: string;
  /** Events in a FilterLogEvents answer. */
  events?: number;
  nextToken?: boolean;
  /** Whether the request carried a SigV4 signature for the `logs` service. */
  signed: boolean;
}

export type Fault = 'throttle' | 'unavailable' | 'internal' | 'reset';

export interface FaultContext {
  operation: string;
  input: Record<string, unknown>;
  /** 0-based index of this request among all requests. */
  n: number;
}

interface Page {
  events: StoredEvent[];
  last: boolean;
}

interface Cursor {
  fingerprint: string;
  pages: Page[];
  index: number;
}

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';

export class CloudWatchLogsServer {
  url = '';
  readonly requests: RequestRecord[] = [];
  /** Events per FilterLogEvents page (the client's `limit` can lower it). */
  pageSize = 3;
  /** Put an empty page carrying a token before every page of FilterLogEvents results. */
  emptyPages = true;
  groupPageSize = 2;
  streamPageSize = 2;
  /** Decides a fault for a request before it is served; undefined serves it. */
  fault: ((ctx: FaultContext) => Fault | undefined) | undefined;
  #groups = new Map<string, { creationTime: number; streams: Map<string, StoredEvent[]> }>();
  #tokens = new Map<string, Cursor | { kind: 'list'; fingerprint: string; offset: number }>();
  #seq = 0;
  #server: Server | undefined;

  createGroup(name: string): void {
    if (!this.#groups.has(name)) this.#groups.set(name, { creationTime: Date.now(), streams: new Map() });
  }

  /** Puts events into a stream (creating the group and stream); returns them with their ids. */
  putEvents(group: string, stream: string, events: Array<{ timestamp: number; message: string }>): StoredEvent[] {
    this.createGroup(group);
    const g = this.#groups.get(group)!;
    let s = g.streams.get(stream);
    if (!s) g.streams.set(stream, (s = []));
    const now = Date.now();
    const out = events.map((e) => {
      const seq = this.#seq++;
      // 56 decimal digits, as the service's event ids are; opaque to clients.
      const eventId = `${String(e.timestamp).padStart(16, '0')}${String(seq).padStart(40, '0')}`;
      return { group, stream, eventId, timestamp: e.timestamp, ingestionTime: now, message: e.message, seq };
    });
    s.push(...out);
    return out;
  }

  /** Every stored event, in the order FilterLogEvents returns them. */
  allEvents(): StoredEvent[] {
    return [...this.#groups.values()].flatMap((g) => [...g.streams.values()].flat()).sort(byTime);
  }

  filterRequests(): RequestRecord[] {
    return this.requests.filter((r) => r.operation === 'FilterLogEvents');
  }

  async start(): Promise<this> {
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.keepAliveTimeout = 60_000;
    await new Promise<void>((res) => this.#server!.listen(0, '127.0.0.1', res));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    const s = this.#server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((res) => s.close(() => res()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const at = performance.timeOrigin + performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.startsWith('Logs_20140328.') ? target.slice('Logs_20140328.'.length) : target;
      const signed = /^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[^/]+\/logs\/aws4_request/.test(String(req.headers.authorization ?? ''));
      let input: Record<string, unknown> = {};
      const record: RequestRecord = { at, operation, input, status: 0, signed };
      this.requests.push(record);
      const send = (status: number, body: unknown, errorType?: string): void => {
        record.status = status;
        if (errorType) record.error = errorType;
        const text = JSON.stringify(body);
        res.writeHead(status, {
          'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': randomUUID(),
          ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
        });
        res.end(text);
      };
      const fail = (status: number, type: string, message: string): void => send(status, { __type: type, message }, type);
      if (req.method !== 'POST' || req.url !== '/' || !target.startsWith('Logs_20140328.')) return fail(400, 'UnknownOperationException', `unknown operation ${target}`);
      if (!String(req.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.1')) return fail(400, 'SerializationException', 'expected application/x-amz-json-1.1');
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
        record.input = input;
      } catch {
        return fail(400, 'SerializationException', 'body is not JSON');
      }
      const fault = this.fault?.({ operation, input, n: this.requests.length - 1 });
      if (fault === 'reset') {
        record.status = -1;
        record.error = 'reset';
        req.socket.destroy();
        return;
      }
      if (fault === 'throttle') return fail(400, 'ThrottlingException', 'Rate exceeded');
      if (fault === 'unavailable') return fail(503, 'ServiceUnavailableException', 'The service cannot complete the request.');
      if (fault === 'internal') return fail(500, 'InternalFailure', 'The request processing has failed because of an unknown error.');
      try {
        if (operation === 'FilterLogEvents') {
          const out = this.#filter(input);
          record.events = out.events.length;
          record.nextToken = out.nextToken !== undefined;
          return send(200, out);
        }
        if (operation === 'DescribeLogGroups') return send(200, this.#describeGroups(input));
        if (operation === 'DescribeLogStreams') return send(200, this.#describeStreams(input));
        return fail(400, 'UnknownOperationException', `unsupported operation ${operation}`);
      } catch (err) {
        const e = err as Error & { type?: string };
        return fail(400, e.type ?? 'InvalidParameterException', e.message);
      }
    });
  }

  #group(input: Record<string, unknown>): { name: string; data: { creationTime: number; streams: Map<string, StoredEvent[]> } } {
    const byName = input.logGroupName as string | undefined;
    const byId = input.logGroupIdentifier as string | undefined;
    if ((byName === undefined) === (byId === undefined)) throw invalid('specify exactly one of logGroupName and logGroupIdentifier');
    const name = byName ?? /:log-group:(.+)$/.exec(byId!)?.[1] ?? byId!;
    const data = this.#groups.get(name);
    if (!data) throw Object.assign(new Error('The specified log group does not exist.'), { type: 'ResourceNotFoundException' });
    return { name, data };
  }

  #filter(input: Record<string, unknown>): { events: unknown[]; searchedLogStreams: unknown[]; nextToken?: string } {
    const { data } = this.#group(input);
    const names = input.logStreamNames as string[] | undefined;
    const prefix = input.logStreamNamePrefix as string | undefined;
    if (names && prefix !== undefined) throw invalid('logStreamNames and logStreamNamePrefix cannot both be given');
    if (names && names.length > 100) throw invalid('at most 100 logStreamNames');
    const fingerprint = JSON.stringify({ ...input, nextToken: undefined, limit: undefined });
    let cursor: Cursor;
    if (typeof input.nextToken === 'string') {
      const c = this.#tokens.get(input.nextToken);
      if (!c || !('pages' in c) || c.fingerprint !== fingerprint) throw invalid('The specified nextToken is invalid.');
      this.#tokens.delete(input.nextToken);
      cursor = c;
    } else {
      const start = typeof input.startTime === 'number' ? input.startTime : -Infinity;
      const end = typeof input.endTime === 'number' ? input.endTime : Infinity;
      const match = patternMatcher(typeof input.filterPattern === 'string' ? input.filterPattern : '');
      const found: StoredEvent[] = [];
      for (const [stream, events] of data.streams) {
        if (names && !names.includes(stream)) continue;
        if (prefix !== undefined && !stream.startsWith(prefix)) continue;
        // startTime and endTime are both inclusive, as the service documents.
        for (const e of events) if (e.timestamp >= start && e.timestamp <= end && match(e.message)) found.push(e);
      }
      found.sort(byTime);
      const size = Math.max(1, Math.min(this.pageSize, typeof input.limit === 'number' ? input.limit : Infinity));
      const pages: Page[] = [];
      for (let i = 0; i < found.length; i += size) {
        if (this.emptyPages) pages.push({ events: [], last: false });
        pages.push({ events: found.slice(i, i + size), last: false });
      }
      if (this.emptyPages && pages.length === 0) pages.push({ events: [], last: false });
      pages.push({ events: [], last: true });
      // A full last page ends the query itself, without a trailing empty page.
      if (pages.length >= 2 && pages[pages.length - 2]!.events.length > 0) {
        pages.pop();
        pages[pages.length - 1]!.last = true;
      }
      cursor = { fingerprint, pages, index: 0 };
    }
    const page = cursor.pages[cursor.index]!;
    const out: { events: unknown[]; searchedLogStreams: unknown[]; nextToken?: string } = {
      events: page.events.map((e) => ({ logStreamName: e.stream, timestamp: e.timestamp, message: e.message, ingestionTime: e.ingestionTime, eventId: e.eventId })),
      searchedLogStreams: [],
    };
    if (!page.last) {
      const token = opaqueToken();
      this.#tokens.set(token, { ...cursor, index: cursor.index + 1 });
      out.nextToken = token;
    }
    return out;
  }

  #list<T>(input: Record<string, unknown>, items: T[], pageSize: number): { items: T[]; nextToken?: string } {
    const fingerprint = JSON.stringify({ ...input, nextToken: undefined });
    let offset = 0;
    if (typeof input.nextToken === 'string') {
      const c = this.#tokens.get(input.nextToken);
      if (!c || !('offset' in c) || c.fingerprint !== fingerprint) throw invalid('The specified nextToken is invalid.');
      offset = c.offset;
    }
    const size = Math.min(pageSize, typeof input.limit === 'number' ? input.limit : Infinity);
    const page = items.slice(offset, offset + size);
    if (offset + size >= items.length) return { items: page };
    const token = opaqueToken();
    this.#tokens.set(token, { kind: 'list', fingerprint, offset: offset + size });
    return { items: page, nextToken: token };
  }

  #describeGroups(input: Record<string, unknown>): unknown {
    const prefix = typeof input.logGroupNamePrefix === 'string' ? input.logGroupNamePrefix : '';
    const names = [...this.#groups.keys()].filter((n) => n.startsWith(prefix)).sort();
    const { items, nextToken } = this.#list(input, names, this.groupPageSize);
    return {
      logGroups: items.map((name) => ({
        logGroupName: name, creationTime: this.#groups.get(name)!.creationTime, metricFilterCount: 0, storedBytes: 0, logGroupClass: 'STANDARD',
        arn: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${name}:*`, logGroupArn: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${name}`,
      })),
      ...(nextToken ? { nextToken } : {}),
    };
  }

  #describeStreams(input: Record<string, unknown>): unknown {
    const { name, data } = this.#group(input);
    const prefix = typeof input.logStreamNamePrefix === 'string' ? input.logStreamNamePrefix : '';
    const streams = [...data.streams.keys()].filter((s) => s.startsWith(prefix)).sort();
    const { items, nextToken } = this.#list(input, streams, this.streamPageSize);
    return {
      logStreams: items.map((s) => {
        const events = data.streams.get(s)!;
        const times = events.map((e) => e.timestamp);
        return {
          logStreamName: s, creationTime: data.creationTime, storedBytes: 0,
          arn: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${name}:log-stream:${s}`,
          ...(times.length ? { firstEventTimestamp: Math.min(...times), lastEventTimestamp: Math.max(...times), lastIngestionTime: Math.max(...events.map((e) => e.ingestionTime)) } : {}),
        };
      }),
      ...(nextToken ? { nextToken } : {}),
    };
  }
}

function byTime(a: StoredEvent, b: StoredEvent): number {
  return a.timestamp - b.timestamp || a.ingestionTime - b.ingestionTime || a.seq - b.seq;
}

function invalid(message: string): Error {
  return Object.assign(new Error(message), { type: 'InvalidParameterException' });
}

function opaqueToken(): string {
  return `${randomBytes(24).toString('base64url')}==`;
}

/**
 * A small part of the filter pattern syntax: terms (all must occur; "quoted phrases" too), or one
 * JSON condition `{ $.a.b = "value" }`. Enough to show the pattern reaches the service and is applied.
 */
export function patternMatcher(pattern: string): (message: string) => boolean {
  const text = pattern.trim();
  if (text === '') return () => true;
  const json = /^\{\s*\$\.([\w.]+)\s*=\s*"?([^"}]*?)"?\s*\}$/.exec(text);
  if (json) {
    const path = json[1]!.split('.');
    const want = json[2]!;
    return (message) => {
      try {
        let v: unknown = JSON.parse(message);
        for (const p of path) v = (v as Record<string, unknown> | undefined)?.[p];
        return String(v) === want;
      } catch {
        return false;
      }
    };
  }
  const terms = [...text.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
  return (message) => terms.every((t) => message.includes(t));
}
