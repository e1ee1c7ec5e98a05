/**
 * S3 event notifications as SQS delivers them, parsed into the objects they name. Pure: no I/O.
 *
 * Three shapes reach a queue:
 * - S3 → SQS directly (and SNS with raw message delivery): `{"Records":[{"eventName":"ObjectCreated:Put",
 *   "s3":{"bucket":{"name"},"object":{"key","size","eTag","sequencer"}}}]}`, the key URL-encoded as in
 *   an HTML form (`+` for a space, `%3D` for `=`, UTF-8 bytes as `%C3%A9`);
 * - S3 → SNS → SQS: an envelope `{"Type":"Notification","Message":"<the S3 JSON as a string>"}`;
 * - S3 → EventBridge → SQS: `{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name"},
 *   "object":{"key","size","etag"}}}`, the key NOT URL-encoded.
 * S3's `s3:TestEvent` (sent when a notification is configured) and events other than creation
 * (ObjectRemoved, restores, tagging…) name nothing to collect: they are counted, not errors.
 */

/** An object a notification says was created. */
export interface NotifiedObject {
  bucket: string;
  /** Decoded: the key as S3 stores it. */
  key: string;
  /** Without quotes; absent when the notification carries none (then the object is looked up). */
  etag?: string;
  size?: number;
  /** When the event happened. */
  time?: Date;
  sequencer?: string;
  /** `ObjectCreated:Put`, `Object Created`… */
  event: string;
}

export interface Notification {
  /** How it was delivered. */
  via: 's3' | 'sns' | 'eventbridge';
  objects: NotifiedObject[];
  /** `s3:TestEvent` messages (0 or 1). */
  testEvents: number;
  /** Names of events that create nothing (`ObjectRemoved:Delete`, `Object Deleted`…). */
  otherEvents: string[];
}

/** Why a message is not a notification this source understands. */
export interface Unparseable {
  error: string;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A key as S3 notifications encode it: form encoding, `+` for a space. Throws on malformed escapes. */
export function decodeS3Key(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, ' '));
}

/** A short, printable excerpt of a message body for error messages. */
function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 60 ? `${flat.slice(0, 60)}…` : flat;
}

function size(v: unknown): number | undefined {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function etag(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const e = v.replace(/"/g, '');
  return e === '' ? undefined : e;
}

function time(v: unknown): Date | undefined {
  if (typeof v !== 'string') return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Parses one SQS message body. */
export function parseNotification(body: string): Notification | Unparseable {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return { error: `not JSON: '${excerpt(body)}'` };
  }
  if (!isObject(doc)) return { error: `not a JSON object: '${excerpt(body)}'` };
  if (doc.Type === 'Notification' && typeof doc.Message === 'string') {
    // SNS envelope: the S3 (or EventBridge) JSON is a string inside it.
    let inner: unknown;
    try {
      inner = JSON.parse(doc.Message);
    } catch {
      return { error: `SNS notification whose Message is not JSON: '${excerpt(doc.Message)}'` };
    }
    if (!isObject(inner)) return { error: `SNS notification whose Message is not a JSON object: '${excerpt(doc.Message)}'` };
    const parsed = parseDocument(inner);
    return 'error' in parsed ? { error: `SNS notification: ${parsed.error}` } : { ...parsed, via: 'sns' };
  }
  if (typeof doc.Type === 'string' && /Confirmation$/.test(doc.Type)) {
    // An SNS subscription message (cross-account subscriptions are confirmed by visiting SubscribeURL).
    return { via: 'sns', objects: [], testEvents: 0, otherEvents: [`sns:${doc.Type}`] };
  }
  return parseDocument(doc);
}

function parseDocument(doc: Json): Notification | Unparseable {
  if (doc.Event === 's3:TestEvent') return { via: 's3', objects: [], testEvents: 1, otherEvents: [] };
  if (Array.isArray(doc.Records)) return parseRecords(doc.Records);
  if (typeof doc['detail-type'] === 'string') return parseEventBridge(doc);
  const keys = Object.keys(doc).slice(0, 6).join(', ');
  return { error: `not an S3 event notification (no Records, Event or detail-type; keys: ${keys || 'none'})` };
}

function parseRecords(records: unknown[]): Notification | Unparseable {
  if (records.length === 0) return { error: 'an S3 notification with no Records' };
  const out: Notification = { via: 's3', objects: [], testEvents: 0, otherEvents: [] };
  for (const [i, r] of records.entries()) {
    if (!isObject(r) || typeof r.eventName !== 'string') return { error: `Records[${i}]: no eventName` };
    if (r.eventSource !== undefined && r.eventSource !== 'aws:s3') return { error: `Records[${i}]: not an S3 event (eventSource ${String(r.eventSource)})` };
    if (!r.eventName.startsWith('ObjectCreated:')) {
      out.otherEvents.push(r.eventName);
      continue;
    }
    const s3 = isObject(r.s3) ? r.s3 : undefined;
    const bucket = isObject(s3?.bucket) ? s3.bucket.name : undefined;
    const object = isObject(s3?.object) ? s3.object : undefined;
    if (typeof bucket !== 'string' || bucket === '') return { error: `Records[${i}]: ${r.eventName} without s3.bucket.name` };
    if (typeof object?.key !== 'string' || object.key === '') return { error: `Records[${i}]: ${r.eventName} without s3.object.key` };
    let key: string;
    try {
      key = decodeS3Key(object.key);
    } catch {
      return { error: `Records[${i}]: s3.object.key '${excerpt(object.key)}' is not URL-encoded as S3 encodes keys` };
    }
    out.objects.push(notified(bucket, key, object.eTag, object.size, r.eventTime, object.sequencer, r.eventName));
  }
  return out;
}

function parseEventBridge(doc: Json): Notification | Unparseable {
  const type = doc['detail-type'] as string;
  if (doc.source !== 'aws.s3') return { error: `an EventBridge event from ${String(doc.source)}, not aws.s3 (${type})` };
  const out: Notification = { via: 'eventbridge', objects: [], testEvents: 0, otherEvents: [] };
  if (type !== 'Object Created') {
    out.otherEvents.push(type);
    return out;
  }
  const detail = isObject(doc.detail) ? doc.detail : undefined;
  const bucket = isObject(detail?.bucket) ? detail.bucket.name : undefined;
  const object = isObject(detail?.object) ? detail.object : undefined;
  if (typeof bucket !== 'string' || bucket === '') return { error: 'EventBridge Object Created without detail.bucket.name' };
  if (typeof object?.key !== 'string' || object.key === '') return { error: 'EventBridge Object Created without detail.object.key' };
  // EventBridge keys are plain text, not URL-encoded.
  out.objects.push(notified(bucket, object.key, object.etag, object.size, doc.time, object.sequencer, type));
  return out;
}

function notified(bucket: string, key: string, e: unknown, s: unknown, t: unknown, seq: unknown, event: string): NotifiedObject {
  const o: NotifiedObject = { bucket, key, event };
  const tag = etag(e);
  if (tag !== undefined) o.etag = tag;
  const n = size(s);
  if (n !== undefined) o.size = n;
  const d = time(t);
  if (d) o.time = d;
  if (typeof seq === 'string') o.sequencer = seq;
  return o;
}
