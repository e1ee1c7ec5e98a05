/**
 * Shapes several mappers accept besides their own records: CloudWatch Logs deliveries (a
 * subscription DATA_MESSAGE, or one event as FilterLogEvents returns it) and the collapsing of a
 * fanned-out record into one MapResult.
 */
import type { Logger, MapResult, RecordContext, Row } from '../types.js';
import { RowError, RowSkip } from '../types.js';

/** One result per element of a record that fans out. */
export type Part = Row | RowError | RowSkip;

/** One log event: `{id, timestamp, message}` in a subscription, `{eventId, …}` from FilterLogEvents. */
export interface CloudWatchEvent {
  id: string;
  timestamp: number | undefined;
  message: unknown;
}

/** A CloudWatch Logs delivery in any of its shapes, normalised. */
export interface CloudWatchDelivery {
  control: boolean;
  source: string | undefined;
  events: CloudWatchEvent[];
}

/** `_source` of a CloudWatch event: `cloudwatch://<group>/<stream>`, the names written as they are. */
export function cloudWatchUri(group: string, stream: string): string {
  return `cloudwatch://${group}/${stream}`;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function toEvent(e: Record<string, unknown>): CloudWatchEvent {
  const id = str(e.id) ?? str(e.eventId) ?? '';
  const ts = typeof e.timestamp === 'number' ? e.timestamp : undefined;
  return { id, timestamp: ts, message: e.message };
}

/**
 * Recognises a CloudWatch Logs delivery: a subscription message (`messageType` + `logEvents`, any
 * key order) or a single log event (`message` plus `eventId`/`id` and `timestamp`). Anything else
 * is not one (undefined). The source is `cloudwatch://group/stream` when the input names both.
 */
export function cloudWatchDelivery(v: Record<string, unknown>): CloudWatchDelivery | undefined {
  if (typeof v.messageType === 'string') {
    const group = str(v.logGroup) ?? str(v.logGroupName);
    const stream = str(v.logStream) ?? str(v.logStreamName);
    const source = group !== undefined && stream !== undefined ? cloudWatchUri(group, stream) : undefined;
    if (v.messageType === 'CONTROL_MESSAGE') return { control: true, source, events: [] };
    if (!Array.isArray(v.logEvents)) return undefined;
    const events: CloudWatchEvent[] = [];
    for (const e of v.logEvents) if (e !== null && typeof e === 'object') events.push(toEvent(e as Record<string, unknown>));
    return { control: false, source, events };
  }
  if ('message' in v && typeof v.timestamp === 'number' && (typeof v.eventId === 'string' || typeof v.id === 'string')) {
    const group = str(v.logGroup) ?? str(v.logGroupName);
    const stream = str(v.logStream) ?? str(v.logStreamName);
    const source = group !== undefined && stream !== undefined ? cloudWatchUri(group, stream) : undefined;
    return { control: false, source, events: [toEvent(v)] };
  }
  return undefined;
}

/**
 * Collapses the parts of one fanned-out record. All rows: the rows. No rows: the first error, else
 * the first skip, else nothing. Rows mixed with errors: the rows, and each error goes to `warn`,
 * because a MapResult cannot carry both (dropping good rows for one bad element would lose data).
 */
export function settleFanOut(parts: Part[], warn?: (problem: RowError, index: number) => void): MapResult {
  const rows: Row[] = [];
  let firstError: RowError | undefined;
  let firstSkip: RowSkip | undefined;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p instanceof RowError) firstError ??= p;
    else if (p instanceof RowSkip) firstSkip ??= p;
    else rows.push(p);
  }
  if (rows.length === 0) return firstError ?? firstSkip ?? null;
  if (firstError && warn) {
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (p instanceof RowError) warn(p, i);
    }
  }
  return rows;
}

/** The warn callback mappers hand to settleFanOut: one log line per element left out. */
export function fanOutWarner(
  log: Logger,
  mapper: string,
  ctx: RecordContext,
): (problem: RowError, index: number) => void {
  return (problem, index) =>
    log.warn(`${mapper}: ${ctx.artifact.uri} record ${ctx.seq}: element ${index} left out: ${problem.message}`, {
      code: problem.code,
      uri: ctx.artifact.uri,
      row: ctx.seq,
      element: index,
    });
}
