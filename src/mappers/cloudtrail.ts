/**
 * `cloudtrail`: one row per CloudTrail event, every field kept exactly as delivered, plus `_id`
 * (the eventID), `_time` (eventTime) and `_source`.
 *
 * The usual input is one event, streamed out of a log file's `Records` array by the json loader.
 * The mapper also takes the other ways CloudTrail events arrive: a whole `{"Records": [...]}`
 * document, a CloudWatch Logs subscription DATA_MESSAGE (or one log event) whose messages are the
 * events as JSON text, a JSON string, and an EventBridge envelope. Digest files and other non-event
 * documents are skipped (counted, not failed). Events are annotated in place: the parsed input
 * belongs to the pipeline, and not copying keeps this stage close to the cost of JSON.parse.
 */
import { RawJsonRecord } from '../loaders/json-raw.js';
import { isoTime } from '../rows.js';
import type { ComponentSpec } from '../spec.js';
import type { ComponentContext, LineSink, Mapper, Row } from '../types.js';
import { RowError, RowSkip, WRITTEN } from '../types.js';
import { cloudWatchDelivery, settleFanOut, type Part } from './common.js';

export const spec: ComponentSpec = {
  parallel: true,
  kind: 'mapper',
  type: 'cloudtrail',
  summary: 'AWS CloudTrail events: one row per event, every field kept as delivered (lossless).',
  options: {},
  defaultLoader: [{ type: 'json', path: 'Records' }],
  consumes: 'records',
};

/** Keys only a CloudTrail event has at its top level; one of them makes a record an event. */
const EVENT_KEYS = ['eventVersion', 'eventID', 'eventTime', 'eventName', 'eventSource', 'eventType'] as const;

/** How deep wrapped deliveries may nest (a string holding a message holding events). */
const MAX_DEPTH = 4;

const RAW_LIMIT = 2048;

function rawOf(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > RAW_LIMIT ? text.slice(0, RAW_LIMIT) : text;
}

/**
 * Annotates one event in place. An event without an eventID or an eventTime cannot be given a
 * stable `_id` or a `_time`, so it is a row error naming what is missing, never a guess.
 */
export function mapCloudTrailEvent(event: Record<string, unknown>, source: string): Row | RowError {
  const id = event.eventID;
  const time = event.eventTime;
  const missing: string[] = [];
  if (typeof id !== 'string' || id === '') missing.push('eventID');
  if (typeof time !== 'string' || time === '') missing.push('eventTime');
  if (missing.length > 0) {
    return new RowError('PIPE_ROW_INVALID', `CloudTrail event without ${missing.join(' and ')}`, rawOf(event));
  }
  const iso = isoTime(time);
  if (iso === undefined) {
    return new RowError('PIPE_ROW_INVALID', `CloudTrail eventTime ${JSON.stringify(time)} is not a valid time`, rawOf(event));
  }
  event._id = id;
  event._time = iso;
  event._source = source;
  return event;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    return new RowError('PIPE_ROW_INVALID', `${what} is not JSON: ${(err as Error).message}`, rawOf(text));
  }
}

function isEventLike(o: Record<string, unknown>): boolean {
  for (const k of EVENT_KEYS) if (o[k] !== undefined) return true;
  return false;
}

function fromValue(value: unknown, source: string, depth: number): Part | Part[] | null {
  if (typeof value === 'string') {
    if (depth >= MAX_DEPTH) return new RowError('PIPE_ROW_INVALID', 'CloudTrail record nested too deep', rawOf(value));
    const parsed = parseJson(value, 'CloudTrail record');
    return parsed instanceof RowError ? parsed : fromValue(parsed, source, depth + 1);
  }
  if (value === null || typeof value !== 'object') return new RowSkip('not a CloudTrail event');
  if (Array.isArray(value)) return flatten(value, source, depth);
  const o = value as Record<string, unknown>;

  // The hot path: an event streamed out of Records.
  if (o.eventID !== undefined || o.eventTime !== undefined) return mapCloudTrailEvent(o, source);

  if (Array.isArray(o.Records)) return o.Records.length === 0 ? null : flatten(o.Records, source, depth);
  if (o.digestStartTime !== undefined || (Array.isArray(o.logFiles) && o.digestS3Object !== undefined)) {
    return new RowSkip('cloudtrail digest');
  }
  const delivery = cloudWatchDelivery(o);
  if (delivery) {
    if (delivery.control) return new RowSkip('cloudwatch control message');
    const from = delivery.source ?? source;
    const parts: Part[] = [];
    for (const e of delivery.events) {
      const one = typeof e.message === 'string' ? parseJson(e.message, `CloudWatch event ${e.id} message`) : e.message;
      const r = one instanceof RowError ? one : fromValue(one, from, depth + 1);
      if (Array.isArray(r)) parts.push(...r);
      else if (r !== null) parts.push(r);
    }
    return parts;
  }
  const detailType = o['detail-type'];
  if (typeof detailType === 'string' && o.detail !== null && typeof o.detail === 'object') {
    // EventBridge carries CloudTrail events as "AWS API Call via CloudTrail", "AWS Console Sign In
    // via CloudTrail", "AWS Service Event via CloudTrail", "AWS Insight via CloudTrail".
    if (detailType.endsWith('via CloudTrail')) return mapCloudTrailEvent(o.detail as Record<string, unknown>, source);
    return new RowSkip('not a CloudTrail event');
  }
  if (isEventLike(o)) return mapCloudTrailEvent(o, source);
  return new RowSkip('not a CloudTrail event');
}

function flatten(items: unknown[], source: string, depth: number): Part[] {
  const parts: Part[] = [];
  for (const item of items) {
    // Elements of Records are events themselves; anything else in the array is not one.
    const r =
      item !== null && typeof item === 'object' && !Array.isArray(item)
        ? fromValue(item, source, depth + 1)
        : new RowSkip('not a CloudTrail event');
    if (Array.isArray(r)) parts.push(...r);
    else if (r !== null) parts.push(r);
  }
  return parts;
}

/**
 * The record logic without streams: an event, or one of the containers it arrives in. A fan-out
 * comes back as an array of parts for the caller to settle.
 */
export function mapCloudTrail(value: unknown, source: string): Part | Part[] | null {
  return fromValue(value, source, 0);
}

/** The top-level keys `writeRawEvent` reads, in this order (Mapper.rawKeys). */
const RAW_KEYS = ['eventID', 'eventTime', '_id', '_time', '_source'] as const;
const QUOTE = 0x22;

/**
 * The fast path for an event handed on as its own bytes (src/loaders/json-raw.ts): when the bytes
 * are what JSON.stringify would write, the row's JSON is those bytes with `_id`, `_time` and
 * `_source` added before the closing brace, exactly JSON.stringify of what `mapCloudTrailEvent`
 * returns. False for anything else (not canonical, not an event, a missing or unusual eventID or
 * eventTime, an event that already has one of the three keys): the record is then parsed and mapped.
 */
export function writeRawEvent(r: RawJsonRecord, sourceJson: string, sink: LineSink): boolean {
  if (!r.canonical || r.fieldStart(2) >= 0 || r.fieldStart(3) >= 0 || r.fieldStart(4) >= 0) return false;
  const b = r.doc.bytes;
  const idStart = r.fieldStart(0);
  const idEnd = r.fieldEnd(0);
  const timeStart = r.fieldStart(1);
  const timeEnd = r.fieldEnd(1);
  // Both present as non-empty strings; eventTime read as it is only when it has no escape.
  if (idStart < 0 || timeStart < 0 || b[idStart] !== QUOTE || b[timeStart] !== QUOTE || idEnd - idStart < 3 || timeEnd - timeStart < 3) return false;
  const time = b.toString('utf8', timeStart + 1, timeEnd - 1);
  if (time.includes('\\')) return false;
  const iso = isoTime(time);
  if (iso === undefined) return false;
  // The event's own keys first, then the three in the order mapCloudTrailEvent adds them.
  sink.copy(b, r.start, r.end - 1, `,"_id":${b.toString('utf8', idStart, idEnd)},"_time":"${iso}","_source":${sourceJson}}`, iso);
  return true;
}

export function create(_options: Record<string, unknown>, ctx: ComponentContext): Mapper {
  return {
    rawKeys: RAW_KEYS,
    forArtifact(artifact) {
      const sourceJson = JSON.stringify(artifact.uri);
      const map = (value: unknown) => {
        const r = fromValue(value instanceof RawJsonRecord ? value.value() : value, artifact.uri, 0);
        return Array.isArray(r) ? settleFanOut(r) : r;
      };
      return {
        map,
        write(value, _rc, sink) {
          return value instanceof RawJsonRecord && writeRawEvent(value, sourceJson, sink) ? WRITTEN : map(value);
        },
      };
    },
  };
}
