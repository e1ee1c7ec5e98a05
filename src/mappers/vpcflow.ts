/**
 * `vpcflow`: VPC and Transit Gateway flow log records, one row per line.
 *
 * Header-driven: a file AWS delivers to S3 starts with a line naming its fields, in any order and
 * from any version; when the first record of an artifact is such a line it defines the fields for
 * the rest of that artifact (it is also seen through `skip()` when a run resumes mid-artifact).
 * Without a header the `format` option applies, else the default version 2 format. A line whose
 * field count differs from its format is a row error giving both counts, never a guess.
 * CloudWatch Logs deliveries (a DATA_MESSAGE, or one log event) carry lines without a header.
 */
import { PipeError } from '../errors.js';
import { isoTime, positionId } from '../rows.js';
import type { ComponentSpec } from '../spec.js';
import { keyTime } from '../sources/s3-layout.js';
import type { ArtifactMapper, ArtifactRef, ComponentContext, LineSink, Mapper, MapResult, RecordContext, Row } from '../types.js';
import { RowError, RowSkip, WRITTEN } from '../types.js';
import { cloudWatchDelivery, settleFanOut, type CloudWatchEvent, type Part, checkBy, NO_CONTEXT } from './common.js';
import { compileVpcFormat, DEFAULT_VPC_FORMAT, headerFields, parseVpcFormat, type VpcFormat } from './vpcflow-fields.js';

export { compileVpcFormat, parseVpcFormat, type VpcFormat } from './vpcflow-fields.js';

export const spec: ComponentSpec = {
  parallel: true,
  check: (options) => checkBy('format', () => create(options, NO_CONTEXT)),
  kind: 'mapper',
  type: 'vpcflow',
  summary: 'AWS VPC and Transit Gateway flow log records (header-driven, any version and field order).',
  options: {
    format: {
      type: 'string',
      description:
        'Fields of lines that come without a header line (CloudWatch Logs, headerless files), as AWS writes the ' +
        'log format (`${version} ${account-id} …`, written `$${…}` in YAML) or as a plain list. A header line wins.',
      default: DEFAULT_VPC_FORMAT.join(' '),
      example: '${version} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr} ${flow-direction} ${traffic-path}',
    },
    skipNoData: {
      type: 'boolean',
      default: false,
      description: 'Drop NODATA and SKIPDATA records instead of keeping them with their log_status.',
      example: true,
    },
  },
  defaultLoader: [{ type: 'lines' }],
  consumes: 'records',
};

const RAW_LIMIT = 2048;

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10 || c === 11 || c === 12;
}

function isDigits(tok: string): boolean {
  for (let i = 0; i < tok.length; i++) {
    const c = tok.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** A token of digits as its integer; beyond 2^53 the digits are kept as text. */
function intOf(digits: string): number | string {
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : digits;
}

/** An integer token as a number, null for `-`, or a RowError. Beyond 2^53 the digits are kept as text. */
function intValue(tok: string, name: string, line: string): number | string | null | RowError {
  if (tok === '-') return null;
  if (!isDigits(tok)) return new RowError('PIPE_ROW_INVALID', `vpcflow: field ${name} is not an integer: "${tok}"`, line.slice(0, RAW_LIMIT));
  return intOf(tok);
}

/**
 * Maps one line with a compiled format. Returns null for a blank line. `_time` comes from `start`,
 * else `end`, else `fallbackMs` (the CloudWatch event time, or the artifact's: see artifactTime),
 * else the time of reading.
 */
export function mapVpcFlowLine(format: VpcFormat, line: string, fallbackMs?: number): Row | RowError | null {
  const { keys, ints, names } = format;
  const want = keys.length;
  const row: Row = {};
  let count = 0;
  let problem: RowError | undefined;
  const len = line.length;
  let i = 0;
  // One pass, no split array: tokens are runs of non-space, so a double space is one separator.
  for (;;) {
    while (i < len && isSpace(line.charCodeAt(i))) i++;
    if (i >= len) break;
    const startTok = i;
    while (i < len && !isSpace(line.charCodeAt(i))) i++;
    if (count < want) {
      const tok = line.slice(startTok, i);
      if (ints[count]) {
        const v = intValue(tok, names[count]!, line);
        if (v instanceof RowError) problem ??= v;
        else row[keys[count]!] = v;
      } else {
        row[keys[count]!] = tok === '-' ? null : tok;
      }
    }
    count++;
  }
  if (count === 0) return null;
  if (count !== want) {
    return new RowError(
      'PIPE_ROW_INVALID',
      `vpcflow: expected ${want} fields, got ${count}`,
      line.length > RAW_LIMIT ? line.slice(0, RAW_LIMIT) : line,
    );
  }
  if (problem) return problem;
  const t = format.start >= 0 ? row[keys[format.start]!] : undefined;
  const e = format.end >= 0 ? row[keys[format.end]!] : undefined;
  row._time = isoSeconds(t) ?? isoSeconds(e) ?? isoTime(fallbackMs ?? Date.now());
  return row;
}

/**
 * The JSON `mapVpcFlowLine` plus `_id` and `_source` would give, built straight from the line:
 * JSON.stringify of that row, byte for byte, without the row. An integer's digits are its JSON
 * unless they start with a zero or are too long to be read exactly; a string needs no escaping
 * unless it holds a quote, a backslash, a control character or a surrogate (the tokenizer notes
 * one as it passes). Anything unusual (a blank line, a field count or an integer problem, no time)
 * returns undefined: `mapVpcFlowLine` then gives the verdict, and the error, as it always has.
 * `null`: a NODATA or SKIPDATA line dropped (`skipNoData`).
 */
export function vpcFlowJson(
  format: VpcFormat, line: string, skipNoData: boolean, sink: LineSink, id: string, sourceJson: string, fallbackMs?: number,
): typeof WRITTEN | null | undefined {
  const { ints, prefixes } = format;
  const want = ints.length;
  const len = line.length;
  let json = '';
  let count = 0;
  let start: number | string | undefined;
  let end: number | string | undefined;
  let noData = false;
  let i = 0;
  for (;;) {
    while (i < len && isSpace(line.charCodeAt(i))) i++;
    if (i >= len) break;
    const startTok = i;
    let escape = false;
    for (; i < len; i++) {
      const c = line.charCodeAt(i);
      if (c <= 32 && isSpace(c)) break;
      if (c < 32 || c === 34 || c === 92 || (c >= 0xd800 && c <= 0xdfff)) escape = true;
    }
    if (count >= want) return undefined;
    const tok = line.slice(startTok, i);
    let value: string;
    if (tok === '-') {
      value = 'null';
    } else if (ints[count]) {
      const t = intJson(tok);
      if (t === undefined) return undefined;
      value = t;
      if (count === format.start) start = intOf(tok);
      else if (count === format.end) end = intOf(tok);
    } else {
      if (count === format.status && (tok === 'NODATA' || tok === 'SKIPDATA')) noData = true;
      value = escape ? JSON.stringify(tok) : `"${tok}"`;
    }
    json += prefixes[count]! + value;
    count++;
  }
  if (count !== want) return undefined;
  if (noData && skipNoData) return null;
  const time = isoSeconds(start) ?? isoSeconds(end) ?? isoTime(fallbackMs ?? Date.now());
  if (time === undefined) return undefined;
  sink.line(`${json},"_time":"${time}","_id":"${id}","_source":${sourceJson}}`, time);
  return WRITTEN;
}

/** An integer token's JSON as intValue + JSON.stringify would give it, or undefined when it is not digits. */
function intJson(tok: string): string | undefined {
  if (!isDigits(tok)) return undefined;
  // Up to 15 digits always read exactly; a leading zero is dropped by the number.
  if (tok.length <= 15 && (tok.length === 1 || tok.charCodeAt(0) !== 48)) return tok;
  const v = intOf(tok);
  return typeof v === 'number' ? String(v) : `"${v}"`;
}

const TWO_DIGITS = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const MAX_SECONDS = 8.64e12;
let cachedDay = NaN;
let cachedDayPrefix = '';

/**
 * Epoch seconds as ISO 8601 with milliseconds, or undefined when not a time. The lines of one file
 * fall within minutes of each other, so the date part is cached and only the clock is formatted:
 * this is several times cheaper than `new Date().toISOString()` per row.
 */
function isoSeconds(secs: unknown): string | undefined {
  if (typeof secs !== 'number' || !Number.isInteger(secs) || secs < 0 || secs > MAX_SECONDS) return undefined;
  const day = Math.floor(secs / 86400);
  if (day !== cachedDay) {
    cachedDayPrefix = new Date(day * 86_400_000).toISOString().slice(0, 11);
    cachedDay = day;
  }
  const s = secs - day * 86400;
  return `${cachedDayPrefix}${TWO_DIGITS[(s / 3600) | 0]}:${TWO_DIGITS[((s % 3600) / 60) | 0]}:${TWO_DIGITS[s % 60]}.000Z`;
}

/**
 * The time a line without `start` and `end` (a custom format without them) is given: the delivery
 * time in its file's name (`…_20240301T0005Z_….log.gz`), else the file's or object's last change.
 * Either is the same at every read, so a row collected again keeps its `_time` and its partition.
 */
export function artifactTime(artifact: ArtifactRef): number | undefined {
  return keyTime(artifact.uri) ?? artifact.mtime?.getTime();
}

function isNoData(format: VpcFormat, row: Row): boolean {
  if (format.status < 0) return false;
  const s = row[format.keys[format.status]!];
  return s === 'NODATA' || s === 'SKIPDATA';
}

interface Settings {
  format: VpcFormat;
  skipNoData: boolean;
}

class VpcArtifactMapper implements ArtifactMapper {
  #format: VpcFormat;
  readonly #settings: Settings;
  readonly #ctx: ComponentContext;
  #source = '';
  #sourceJson = '""';
  /** `_time` of a line without start and end (artifactTime). */
  readonly #time: number | undefined;

  constructor(settings: Settings, ctx: ComponentContext, artifact: ArtifactRef) {
    this.#settings = settings;
    this.#format = settings.format;
    this.#ctx = ctx;
    this.#time = artifactTime(artifact);
  }

  /** A header can only be the first record; returns true when it was one. */
  #header(value: unknown, seq: number): boolean {
    if (seq !== 0 || typeof value !== 'string') return false;
    const fields = headerFields(value.charCodeAt(0) === 0xfeff ? value.slice(1) : value);
    if (!fields) return false;
    this.#format = compileVpcFormat(fields);
    return true;
  }

  skip(value: unknown, ctx: RecordContext): void {
    this.#header(value, ctx.seq);
  }

  write(value: unknown, ctx: RecordContext, sink: LineSink): MapResult | typeof WRITTEN {
    // The first record may be a header (the object path looks): from the second on, the fast path.
    if (typeof value !== 'string' || ctx.seq === 0 || !this.#format.plainKeys) return this.map(value, ctx);
    const source = ctx.artifact.uri;
    if (source !== this.#source) {
      this.#source = source;
      this.#sourceJson = JSON.stringify(source);
    }
    const r = vpcFlowJson(this.#format, value, this.#settings.skipNoData, sink, positionId(ctx.artifact.identity, ctx.seq), this.#sourceJson, this.#time);
    return r === undefined ? this.map(value, ctx) : r;
  }

  map(value: unknown, ctx: RecordContext): MapResult {
    if (typeof value === 'string') {
      if (ctx.seq === 0 && this.#header(value, 0)) return null;
      const row = mapVpcFlowLine(this.#format, value, this.#time);
      if (row === null || row instanceof RowError) return row;
      if (this.#settings.skipNoData && isNoData(this.#format, row)) return null;
      row._id = positionId(ctx.artifact.identity, ctx.seq);
      row._source = ctx.artifact.uri;
      return row;
    }
    if (Buffer.isBuffer(value)) return this.map(value.toString('utf8'), ctx);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const delivery = cloudWatchDelivery(value as Record<string, unknown>);
      if (delivery?.control) return new RowSkip('cloudwatch control message');
      if (delivery) return this.#delivery(delivery.events, delivery.source ?? ctx.artifact.uri, ctx);
    }
    return new RowError('PIPE_ROW_INVALID', 'vpcflow: expected a text line or a CloudWatch Logs message');
  }

  #delivery(events: CloudWatchEvent[], source: string, ctx: RecordContext): MapResult {
    const parts: Part[] = [];
    for (let k = 0; k < events.length; k++) {
      const ev = events[k]!;
      if (typeof ev.message !== 'string') {
        parts.push(new RowError('PIPE_ROW_INVALID', `vpcflow: CloudWatch event ${ev.id} has no text message`));
        continue;
      }
      const row = mapVpcFlowLine(this.#settings.format, ev.message, ev.timestamp);
      if (row === null) continue;
      if (row instanceof RowError) {
        parts.push(new RowError(row.code, `CloudWatch event ${ev.id}: ${row.message}`, row.raw));
        continue;
      }
      if (this.#settings.skipNoData && isNoData(this.#settings.format, row)) continue;
      row._id = ev.id !== '' ? ev.id : positionId(ctx.artifact.identity, ctx.seq, k + 1);
      row._source = source;
      parts.push(row);
    }
    return settleFanOut(parts);
  }
}

export function create(options: Record<string, unknown>, ctx: ComponentContext): Mapper {
  const text = options.format;
  if (text !== undefined && typeof text !== 'string') {
    throw new PipeError('PIPE_CONFIG_INVALID', 'vpcflow format: expected a string');
  }
  const settings: Settings = {
    format: compileVpcFormat(text === undefined ? DEFAULT_VPC_FORMAT : parseVpcFormat(text)),
    skipNoData: options.skipNoData === true,
  };
  return { forArtifact: (artifact) => new VpcArtifactMapper(settings, ctx, artifact) };
}
