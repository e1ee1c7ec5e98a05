/**
 * Rows serialized as they are mapped (CollectPlan.rowWriter, what worker threads do): the batches
 * must carry the same JSON lines, positions, row counts and row errors as batches of row objects
 * serialized afterwards, whether the last mapper writes its JSON itself (vpcflow) or not.
 */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { BATCH_MAX_BYTES, collectArtifact, type CollectPlan } from '../../src/engine/collect.js';
import { autoDecompress } from '../../src/loaders/decompress.js';
import { create as lines } from '../../src/loaders/lines.js';
import { create as rename } from '../../src/mappers/rename.js';
import { create as vpcflow } from '../../src/mappers/vpcflow.js';
import { partitionOfTime, RowWriter, serializeRows } from '../../src/sinks/serialize.js';
import type { Artifact, Batch, ComponentContext, Mapper, RowSerializer } from '../../src/types.js';

const ctx = { pipeline: 't', baseDir: '/tmp' } as ComponentContext;

function memory(body: Buffer): Artifact {
  return {
    identity: 'mem:1', uri: 'file:///data/vpc "1".log', size: body.length, seekable: true,
    async open() {
      const chunks: Buffer[] = [];
      for (let i = 0; i < body.length; i += 4096) chunks.push(body.subarray(i, i + 4096));
      return Readable.from(chunks);
    },
  };
}

const HEADER = 'version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status';

function vpcText(n: number): string {
  const out = [HEADER];
  for (let i = 0; i < n; i++) {
    if (i % 97 === 5) out.push(`2 123 eni-${i} 10.0.0.1 10.0.0.2 44x 80 6 1 2 1709251200 1709251260 ACCEPT OK`);
    else if (i % 89 === 7) out.push(`2 123 eni-${i} - - - - - - - 1709251200 1709251260 - NODATA`);
    else if (i % 83 === 3) out.push(`2 123 eni-${i} 10.0.0.1`);
    // Times across two days, so day and hour partitions both split.
    else out.push(`2 0123 eni-${i} 10.0.${i % 256}.1 10.0.0.2 ${i % 65536} 443 6 ${i} ${i * 40} ${1709251200 + i * 37} ${1709251260 + i * 37} ACCEPT OK`);
  }
  return out.join('\n') + '\n';
}

async function collect(body: Buffer, mappers: Mapper[], partition: RowSerializer['partition'], writer: boolean): Promise<Batch[]> {
  const plan: CollectPlan = {
    decompress: autoDecompress, loaders: [lines({}, ctx)], mappers, baseRows: mappers.length === 0, batchSize: 200,
    ...(writer ? { rowWriter: () => new RowWriter(partition) } : {}),
  };
  const batches: Batch[] = [];
  await collectArtifact(memory(body), 0, plan, async (b) => void batches.push(b), new AbortController().signal);
  return batches;
}

/** A batch's JSON lines per partition, as text. */
function text(b: Batch, partition: RowSerializer['partition']): Record<string, string> {
  const parts = b.serialized ?? serializeRows(b.rows, partition).parts;
  return Object.fromEntries(parts.map((p) => [p.partition, typeof p.text === 'string' ? p.text : Buffer.from(p.text).toString('utf8')]));
}

describe('rows serialized as they are mapped', () => {
  const cases: Array<[string, () => Mapper[], RowSerializer['partition'], boolean]> = [
    ['vpcflow last (its fast path), day partitions, gzip', () => [vpcflow({}, ctx)], 'day', true],
    ['vpcflow skipNoData, hour partitions', () => [vpcflow({ skipNoData: true }, ctx)], 'hour', false],
    ['vpcflow then rename (objects all the way)', () => [vpcflow({}, ctx), rename({ fields: { srcaddr: 'source_ip' } }, ctx)], 'none', false],
    ['no mapper (base rows)', () => [], 'none', false],
  ];
  it.each(cases)('%s', async (_name, mappers, partition, gzip) => {
    const plain = Buffer.from(vpcText(3000));
    const body = gzip ? gzipSync(plain) : plain;
    const objects = await collect(body, mappers(), partition, false);
    const written = await collect(body, mappers(), partition, true);
    expect(written.map((b) => [b.position, b.rowCount, b.bytes, b.done, b.filtered, b.skipped, b.rowErrors, b.resumeAt])).toEqual(
      objects.map((b) => [b.position, b.rows.length, b.bytes, b.done, b.filtered, b.skipped, b.rowErrors, b.resumeAt]),
    );
    for (const b of written) expect(b.rows).toEqual([]);
    if (mappers().length === 0) {
      // Base rows carry the time of reading: compare everything else.
      const strip = (t: string) => t.replace(/"_time":"[^"]+"/g, '');
      expect(written.map((b) => strip(text(b, partition)['']!))).toEqual(objects.map((b) => strip(text(b, partition)[''] ?? '')));
    } else {
      expect(written.map((b) => text(b, partition))).toEqual(objects.map((b) => text(b, partition)));
    }
    const total = written.reduce((n, b) => n + (b.rowCount ?? 0), 0);
    expect(total).toBeGreaterThan(2500);
    if (partition !== 'none') expect(new Set(written.flatMap((b) => Object.keys(text(b, partition)))).size).toBeGreaterThan(1);
  });

  it('a batch of large rows ends at BATCH_MAX_BYTES of JSON lines, before batchSize records', async () => {
    const big = 'x'.repeat(40_000);
    const lines = Array.from({ length: 1000 }, (_, i) => `${i} ${big}`).join('\n') + '\n';
    const batches = await collect(Buffer.from(lines), [], 'none', true);
    const sizes = batches.map((b) => (b.serialized ?? []).reduce((n, p) => n + p.text.length, 0));
    // batchSize is 200 records here (8 MB of these rows): the bytes end each batch first.
    expect(batches.reduce((n, b) => n + (b.rowCount ?? 0), 0)).toBe(1000);
    expect(batches.length).toBeGreaterThan(15);
    for (const n of sizes) expect(n).toBeLessThan(BATCH_MAX_BYTES + 41_000);
  });

  it('a row that cannot be written as JSON is a row error at its position; the rest are written', async () => {
    const cyclic: Mapper = {
      forArtifact: () => ({
        map(value, rc) {
          const row: Record<string, unknown> = { message: value, _id: `r${rc.seq}`, _time: '2024-03-01T00:00:00.000Z', _source: 'mem://1' };
          if (rc.seq === 4) row.self = row;
          return row;
        },
      }),
    };
    const batches = await collect(Buffer.from('a\nb\nc\nd\ne\nf\n'), [cyclic], 'none', true);
    const errors = batches.flatMap((b) => b.rowErrors);
    expect(errors).toEqual([expect.objectContaining({ artifact: 'mem:1', uri: 'mem://1', code: 'PIPE_ROW_INVALID', position: { row: 5 } })]);
    expect(errors[0]!.message).toMatch(/row r4 cannot be written as JSON/);
    expect(batches.reduce((n, b) => n + (b.rowCount ?? 0), 0)).toBe(5);
    expect(batches.map((b) => text(b, 'none')['']).join('').split('\n').filter(Boolean).map((l) => JSON.parse(l).message)).toEqual(['a', 'b', 'c', 'd', 'f']);
  });
});

describe('RowWriter: partitions of rows written as JSON', () => {
  const times = [
    '2024-03-01T10:00:00.000Z', '2024-03-01T10:59:59.999Z', '2024-03-01T11:00:00.000Z', '2024-03-02T11:00:00.000Z',
    '2024-03-01T10:30:00.000Z', '../../etc/passwd-x', '2024-03-01', '2024-03-0x-T10:00', '2024-03-01T1x:00:00.000Z',
    '2024-03-01T10:00:00.000Z', '', '2024-03-01T10', '2024-03-01Tzz', '2024-03-01T10:00:00.000Z',
  ];

  it.each(['none', 'day', 'hour'] as const)('%s: every row lands where partitionOfTime puts it, whatever came before', (mode) => {
    const writer = new RowWriter(mode);
    const bytes = Buffer.from('{"a":1}');
    const expected = new Map<string, string[]>();
    const expect1 = (t: string, json: string): void => {
      const p = partitionOfTime(t, mode);
      expected.set(p, [...(expected.get(p) ?? []), json]);
    };
    // Each time three ways: copied bytes, a line, a row object; then a row whose _time is no string.
    for (const [i, t] of [...times, ...times, ...times].entries()) {
      if (i % 3 === 0) writer.copy(bytes, 0, bytes.length - 1, `,"i":${i}}`, t);
      else if (i % 3 === 1) writer.line(`{"i":${i}}`, t);
      else expect(writer.add({ i, _time: t })).toBeUndefined();
      expect1(t, i % 3 === 0 ? `{"a":1,"i":${i}}` : i % 3 === 1 ? `{"i":${i}}` : JSON.stringify({ i, _time: t }));
      if (i === 5) {
        writer.add({ n: 5, _time: 5 });
        expect1('', '{"n":5,"_time":5}');
      }
    }
    const got = new Map(writer.take().map((p) => [p.partition, Buffer.from(p.text).toString().trim().split('\n')]));
    expect(got).toEqual(expected);
  });
});
