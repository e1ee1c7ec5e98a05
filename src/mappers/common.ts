/**
 * Shapes several mappers accept besides their own records: CloudWatch Logs deliveries (a
 * subscription DATA_MESSAGE, or one event as FilterLogEvents returns it) and the collapsing of a
 * fanned-out record into one MapResult.
 */
import type { Logger, MapResult, RecordContext, Row } from '../types.js';
import { PipeError } from '../errors.js';
import { RowError, RowSkip, type ComponentContext } from '../types.js';

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
 * The result of one fanned-out record (a Records document, a CloudWatch message): rows, row errors
 * and skips travel together, and the engine records each bad element with its position, so one
 * bad event never costs the good ones.
 */
export function settleFanOut(parts: Part[]): MapResult {
  if (parts.length === 0) return null;
  return parts.length === 1 ? parts[0] : parts;
}

/**
 * A spec `check` that builds the component the way `create` will and turns its configuration error
 * into a problem at `option`, so `pipe validate` reports it with the option's path and line.
 */
export function checkBy(option: string, build: () => unknown): Array<{ option: string; message: string }> {
  try {
    build();
    return [];
  } catch (err) {
    if (err instanceof PipeError && err.code === 'PIPE_CONFIG_INVALID') return [{ option, message: err.message }];
    throw err;
  }
}

/** What a spec `check` hands to `create`: mappers whose create needs no context at build time. */
export const NO_CONTEXT = undefined as unknown as ComponentContext;
