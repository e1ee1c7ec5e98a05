/**
 * Resuming a half-read artifact in the engine (collectArtifact): batches of uncompressed line-based
 * artifacts carry a resume point on a line boundary; a run resuming from it opens a seekable
 * artifact at that byte, shows the stored first record (a VPC header) and the records between the
 * point and the position to the mapper's `skip`, and maps the rest. Anything else is read again from
 * byte 0 and skipped. Either way the rows of the two runs are the rows of one uninterrupted run.
 */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { collectArtifact, type ArtifactResume, type CollectPlan } from '../../src/engine/collect.js';
import { autoDecompress } from '../../src/loaders/decompress.js';
import { create as jsonl } from '../../src/loaders/jsonl.js';
import { create as lines } from '../../src/loaders/lines.js';
import { create as gzipLoader } from '../../src/loaders/gzip.js';
import { create as vpcflow } from '../../src/mappers/vpcflow.js';
import type { Artifact, Batch, ComponentContext, Loader, Row } from '../../src/types.js';

const ctx = {} as ComponentContext;

function plan(loaders: Loader[], mapped: boolean, decompress = true): CollectPlan {
  return {
    decompress: decompress ? autoDecompress : undefined, loaders,
    mappers: mapped ? [vpcflow({}, ctx)] : [], baseRows: !mapped, batchSize: 50,
  };
}

/** An in-memory artifact delivered in chunks of 97 bytes; records where each open started. */
function memory(body: Buffer, seekable: boolean): Artifact & { starts: Array<number | undefined> } {
  const starts: Array<number | undefined> = [];
  return {
    identity: 'mem:1', uri: 'mem://1', size: body.length, seekable, starts,
    async open({ start }) {
      starts.push(start);
      const from = seekable ? start ?? 0 : 0;
      const chunks: Buffer[] = [];
      for (let i = from; i < body.length; i += 97) chunks.push(body.subarray(i, Math.min(body.length, i + 97)));
      return Readable.from(chunks);
    },
  };
}

/** Collects `artifact` from `from`; stops (as a killed run would) once `stopAfter` batches were pushed. */
async function collect(artifact: Artifact, from: number | ArtifactResume, p: CollectPlan, stopAfter = Infinity): Promise<Batch[]> {
  const pushed: Batch[] = [];
  const abort = new AbortController();
  await collectArtifact(artifact, from, p, async (b) => {
    if (abort.signal.aborted) return;
    pushed.push(b);
    if (pushed.length >= stopAfter) abort.abort();
  }, abort.signal).catch(() => undefined);
  return pushed;
}

const key = (r: Row): string => JSON.stringify({ ...r, _time: undefined });

const VPC_HEADER = 'srcaddr bytes version account-id interface-id dstaddr srcport dstport protocol packets start end action log-status';
function vpcBody(n: number): Buffer {
  const out = [VPC_HEADER];
  for (let i = 0; i < n; i++) out.push(`10.0.0.${i % 250} ${i} 5 012345678901 eni-1 10.1.0.1 ${1000 + i} 443 6 1 1709251200 1709251260 ACCEPT OK`);
  return Buffer.from(out.join('\n') + '\n');
}

describe('resuming a half-read artifact', () => {
  it.each([false, true])('a VPC flow file resumes by byte and still maps by its header (interrupted %s)', async (midBatch) => {
    const body = vpcBody(1000);
    const p = plan([lines({}, ctx)], true);
    const whole = (await collect(memory(body, true), 0, p)).flatMap((b) => b.rows).map(key);
    expect(whole).toHaveLength(1000);

    const first = await collect(memory(body, true), 0, p, 4);
    const last = first[first.length - 1]!;
    const at = last.resumeAt!;
    expect(at.head).toBe(VPC_HEADER);
    expect(body[at.byte - 1]).toBe(0x0a);
    expect(at.record).toBeLessThanOrEqual(last.position);
    // Committed up to `position`: the batch boundary itself, or (interrupted mid-batch) a little
    // past the point. Rows are records less the header line.
    const committed = midBatch ? last.position + 3 : last.position;
    expect(first.flatMap((b) => b.rows).map(key)).toEqual(whole.slice(0, last.position - 1));
    const rowsBefore = whole.slice(0, committed - 1);

    const again = memory(body, true);
    const rest = await collect(again, { position: committed, resumeAt: at }, p);
    expect(again.starts).toEqual([at.byte]);
    expect(rest[rest.length - 1]!.done).toBe(true);
    expect([...rowsBefore, ...rest.flatMap((b) => b.rows).map(key)]).toEqual(whole);
  });

  it('batches end on the loader\'s line boundaries, so the resume point is the position', async () => {
    const batches = await collect(memory(vpcBody(1000), true), 0, plan([lines({}, ctx)], true));
    for (const b of batches.slice(0, -1)) expect(b.resumeAt?.record).toBe(b.position);
  });

  it('jsonl with blank lines resumes by byte', async () => {
    const text = Array.from({ length: 400 }, (_, i) => (i % 7 === 0 ? `\n{"n":${i}}` : `{"n":${i}}`)).join('\n') + '\n';
    const body = Buffer.from(text);
    const p = plan([jsonl({}, ctx)], false);
    const whole = (await collect(memory(body, true), 0, p)).flatMap((b) => b.rows).map((r) => r.n);
    const first = await collect(memory(body, true), 0, p, 3);
    const last = first[first.length - 1]!;
    const again = memory(body, true);
    const rest = await collect(again, { position: last.position, resumeAt: last.resumeAt! }, p);
    expect(again.starts).toEqual([last.resumeAt!.byte]);
    expect([...first.flatMap((b) => b.rows).map((r) => r.n).slice(0, last.position), ...rest.flatMap((b) => b.rows).map((r) => r.n)]).toEqual(whole);
  });

  it('gzip content, an explicit gzip loader, or a source that cannot seek: read again from byte 0 and skipped', async () => {
    const text = Buffer.from(Array.from({ length: 500 }, (_, i) => `line ${i}`).join('\n'));
    const zipped = memory(gzipSync(text), true);
    expect((await collect(zipped, 0, plan([lines({}, ctx)], false))).some((b) => b.resumeAt)).toBe(false);
    const explicit = plan([gzipLoader({}, ctx), lines({}, ctx)], false, false);
    expect((await collect(memory(gzipSync(text), true), 0, explicit)).some((b) => b.resumeAt)).toBe(false);

    const p = plan([lines({}, ctx)], false);
    const first = await collect(memory(text, true), 0, p, 2);
    const point = first[first.length - 1]!;
    const fixed = memory(text, false);
    const rest = await collect(fixed, { position: point.position, resumeAt: point.resumeAt! }, p);
    expect(fixed.starts).toEqual([undefined]);
    expect(rest.flatMap((b) => b.rows).map((r) => r.message)).toEqual(Array.from({ length: 500 - point.position }, (_, i) => `line ${point.position + i}`));
  });

  it('a point without the header the first mapper needs is not used', async () => {
    const body = vpcBody(300);
    const p = plan([lines({}, ctx)], true);
    const first = await collect(memory(body, true), 0, p, 2);
    const { head: _h, ...noHead } = first[first.length - 1]!.resumeAt!;
    const again = memory(body, true);
    const rest = await collect(again, { position: noHead.record, resumeAt: noHead }, p);
    expect(again.starts).toEqual([undefined]);
    expect(rest.flatMap((b) => b.rows).every((r) => r.version === 5)).toBe(true);
  });
});
