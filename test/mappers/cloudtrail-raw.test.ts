/**
 * The CloudTrail fast path end to end through the json loader: records handed on as their own bytes
 * (json-scan.ts) and written by `write` must give exactly what parsing and `map` + JSON.stringify
 * give: the same rows byte for byte, the same row errors and skips, the same artifact errors.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateEvents } from '../../bench/mappers/cloudtrail.bench.js';
import { jsonOptions, jsonStage } from '../../src/loaders/json.js';
import { create } from '../../src/mappers/cloudtrail.js';
import { RowError, RowSkip, WRITTEN, type LineSink, type MapResult, type RecordContext } from '../../src/types.js';
import { chunksOf, run } from '../loaders/helpers.js';
import { artifact, fakeContext } from './helpers.js';

const REF = artifact('s3://trail-bucket/AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/f "q" é.json.gz');

function describeResult(r: MapResult, out: string[]): void {
  if (Array.isArray(r)) for (const x of r) describeResult(x, out);
  else if (r instanceof RowError) out.push(`error ${r.code} ${r.message} ${r.raw ?? ''}`);
  else if (r instanceof RowSkip) out.push(`skip ${r.reason}`);
  else if (r === null || r === undefined) out.push('dropped');
  else out.push(`row ${JSON.stringify(r)} @${String(r._time)}`);
}

/** What one document gives through the loader and the mapper, as lines to compare; and how many rows were copied. */
async function through(input: Buffer, raw: boolean, chunk = 1 << 16): Promise<{ out: string[]; copied: number }> {
  const mapper = create({}, fakeContext());
  const stage = jsonStage(jsonOptions({ path: 'Records' }), undefined, raw ? mapper.rawKeys : undefined);
  const { items, error } = await run([stage], chunksOf(input, chunk));
  const am = mapper.forArtifact(REF);
  const out: string[] = [];
  let copied = 0;
  const sink: LineSink = {
    line: () => expect.unreachable('cloudtrail copies bytes'),
    copy(bytes, start, end, tail, time) {
      copied++;
      out.push(`row ${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8', start, end)}${tail} @${time}`);
    },
  };
  items.forEach((item, seq) => {
    const ctx: RecordContext = { artifact: REF, seq, remember: () => {} };
    const r = raw ? am.write!(item, ctx, sink) : am.map(item, ctx);
    if (r !== WRITTEN) describeResult(r, out);
  });
  if (error) out.push(`failed ${(error as { code?: string }).code} ${(error as Error).message}`);
  return { out, copied };
}

async function agree(input: Buffer): Promise<number> {
  const expected = (await through(input, false)).out;
  const got = await through(input, true);
  expect(got.out).toEqual(expected);
  // Cut in small chunks the document is the same.
  expect((await through(input, true, 7)).out).toEqual(expected);
  return got.copied;
}

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const jsonFixtures = ['public/opentelemetry-collector-contrib', 'cloudtrail', 'bad', 'demo/cloudtrail'].flatMap((d) =>
  readdirSync(fixtures + d, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.json')).map((f) => `${d}/${f}`));

const event = (extra: string): string =>
  `{"eventVersion":"1.08","eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventID":"id-1"${extra}}`;

describe('cloudtrail: records as their own bytes', () => {
  it('the generated bench events: every one copied, rows identical', async () => {
    const events = generateEvents(3000, 5);
    const copied = await agree(Buffer.from(`{"Records":[${events.join(',')}]}`));
    expect(copied).toBe(3000);
  });

  it.each(jsonFixtures)('%s: identical rows, errors and skips', async (name) => {
    await agree(readFileSync(fixtures + name));
  });

  it('the public sample as CloudTrail delivers it (compact): every event copied, not parsed', async () => {
    // The sample is indented for reading (so every record is parsed above); deliveries are compact.
    const doc = JSON.parse(readFileSync(`${fixtures}public/opentelemetry-collector-contrib/cloudtrail_log.json`, 'utf8')) as { Records: unknown[] };
    expect(await agree(Buffer.from(JSON.stringify(doc)))).toBe(doc.Records.length);
  });

  it.each([
    ['a plain event', event(''), 1],
    ['eventTime with milliseconds', event('').replace('12:00:00Z', '12:00:00.123Z'), 1],
    ['eventTime with an offset', event('').replace('12:00:00Z', '12:00:00+02:00'), 1],
    ['an unparseable eventTime', event('').replace('2024-03-01T12:00:00Z', 'yesterday'), 0],
    ['an escaped eventTime', event('').replace('12:00:00Z', '12:00:00\\u005a'), 0],
    ['an empty eventID', event('').replace('"id-1"', '""'), 0],
    ['a numeric eventID', event('').replace('"id-1"', '17'), 0],
    ['an eventID with escapes', event('').replace('"id-1"', '"id\\"1\\\\"'), 1],
    ['no eventID', event('').replace(',"eventID":"id-1"', ''), 0],
    ['no eventTime', event('').replace('"eventTime":"2024-03-01T12:00:00Z",', ''), 0],
    ['its own _id', event(',"_id":"mine"'), 0],
    ['its own _time', event(',"_time":"2020-01-01"'), 0],
    ['its own _source', event(',"_source":"x"'), 0],
    ['eventTime twice', event(',"eventTime":"2025-01-01T00:00:00Z"'), 0],
    ['a digits-only key', event(',"requestParameters":{"b":1,"2":3}'), 0],
    ['non-ASCII', event(',"userAgent":"café 🚀"').replace('id-1', 'id-é'), 1],
    ['whitespace', event(', "readOnly" : true'), 0],
    ['odd numbers', event(',"n":[1.0,-0,1e2,0.5,12345678901234567890]'), 0],
    ['a \\u escape', event(',"s":"\\u00e9"'), 0],
    ['nested containers and literals', event(',"a":{"b":[{},[],null,true,false,{"c":"d"}]},"e":[]'), 1],
    ['an EventBridge envelope', '{"detail-type":"AWS API Call via CloudTrail","detail":' + event('') + '}', 0],
    ['a string record', JSON.stringify(event('')), 0],
    ['a number, null and an array', '1,null,[1]', 0],
    ['an empty object', '{}', 0],
  ])('%s', async (_name, records, copied) => {
    expect(await agree(Buffer.from(`{"Records":[${records}]}`))).toBe(copied);
  });

  it('invalid UTF-8 in an event: parsed, U+FFFD as before', async () => {
    const input = Buffer.concat([Buffer.from(`{"Records":[${event(',"k":"').slice(0, -1)}`), Buffer.from([0xff, 0xfe]), Buffer.from(`"},${event('')}]}`)]);
    expect(await agree(input)).toBe(1);
  });

  it('a document the scan leaves to JSON.parse (two documents) still gives the same rows', async () => {
    const one = `{"Records":[${event('')}]}`;
    expect(await agree(Buffer.from(one + '\n' + one))).toBe(0);
  });
});
