/** Test helpers: fixtures, a fake component context, and a driver that calls mappers as the engine does. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { StateStore } from '../../src/state/store.js';
import { expect } from 'vitest';
import type { ArtifactRef, ComponentContext, LineSink, Logger, MapResult, Mapper, RecordContext, Row } from '../../src/types.js';
import { RowError, RowSkip, WRITTEN } from '../../src/types.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/', import.meta.url));

export function fixture(rel: string): string {
  return readFileSync(FIXTURES + rel, 'utf8');
}

export function fixtureJson(rel: string): unknown {
  return JSON.parse(fixture(rel));
}

/** The lines of a file as the lines loader yields them: a final newline ends the last line, it does not start an empty one. */
export function fixtureLines(rel: string): string[] {
  const lines = fixture(rel).split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

export function artifact(uri = 'file:///data/sample.log', identity = `${uri}#1`): ArtifactRef {
  return { identity, uri };
}

export interface FakeContext extends ComponentContext {
  warnings: string[];
}

export function fakeContext(store: Partial<StateStore> = {}): FakeContext {
  const warnings: string[] = [];
  const log: Logger = {
    debug() {},
    info() {},
    warn(message) {
      warnings.push(message);
    },
    error(message) {
      warnings.push(message);
    },
  };
  return { pipeline: 'test', store: store as StateStore, log, baseDir: '/tmp', warnings };
}

export interface RunResult {
  rows: Row[];
  errors: Array<{ seq: number; error: RowError }>;
  skips: Array<{ seq: number; skip: RowSkip }>;
  filtered: number;
  remembered: Array<{ namespace: string; key: string; expiresAt: number }>;
}

/**
 * Feeds records through a mapper chain the way the engine does: records before `resumeAt` go to
 * the first mapper's `skip`, an array fans out element by element into the rest of the chain.
 */
export function run(chain: Mapper[], records: unknown[], ref: ArtifactRef = artifact(), resumeAt = 0): RunResult {
  const out: RunResult = { rows: [], errors: [], skips: [], filtered: 0, remembered: [] };
  const bound = chain.map((m) => m.forArtifact(ref));
  const emit = (i: number, value: MapResult | unknown, seq: number): void => {
    if (value === null || value === undefined) out.filtered++;
    else if (value instanceof RowError) out.errors.push({ seq, error: value });
    else if (value instanceof RowSkip) out.skips.push({ seq, skip: value });
    else if (Array.isArray(value) && i > 0) for (const v of value) emit(i, v, seq);
    else if (i === bound.length) out.rows.push(value as Row);
    else emit(i + 1, bound[i]!.map(value, ctxFor(seq)), seq);
  };
  const ctxFor = (seq: number) => ({
    artifact: ref,
    seq,
    remember: (namespace: string, key: string, expiresAt: number) => out.remembered.push({ namespace, key, expiresAt }),
  });
  records.forEach((record, seq) => {
    if (seq < resumeAt) bound[0]!.skip?.(record, ctxFor(seq));
    else emit(0, record, seq);
  });
  return out;
}

/** Seeded PRNG (mulberry32), shared with the CLI tests. */
export { prng } from '../helpers/data.js';

export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export interface WriteOutcome {
  written: number;
  mapped: number;
}

/**
 * Feeds records through `map` on one artifact mapper and `write` (the JSON fast path) on another,
 * in step: each row `write` writes must be exactly JSON.stringify of the row `map` returns (and its
 * time the row's `_time`); whatever `write` does not write must equal what `map` returns. Records
 * are cloned for each side, since `map` may annotate a parsed event in place.
 */
export function agreeWrite(mapper: Mapper, records: unknown[], ref: ArtifactRef = artifact()): WriteOutcome {
  const byMap = mapper.forArtifact(ref);
  const byWrite = mapper.forArtifact(ref);
  const got: Array<{ json: string; time: string }> = [];
  const sink: LineSink = {
    line: (json, time) => got.push({ json, time }),
    copy: (bytes, start, end, tail, time) => got.push({ json: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8', start, end) + tail, time }),
  };
  const outcome: WriteOutcome = { written: 0, mapped: 0 };
  records.forEach((record, seq) => {
    const ctx: RecordContext = { artifact: ref, seq, remember: () => {} };
    const expected = byMap.map(structuredClone(record), ctx);
    const before = got.length;
    const r = byWrite.write!(structuredClone(record), ctx, sink);
    if (r === WRITTEN) {
      expect(got.length, `record ${seq + 1}: one line written`).toBe(before + 1);
      const row = expected as Row;
      expect(got[before]!.json, `record ${seq + 1}: ${JSON.stringify(record)}`).toBe(JSON.stringify(row));
      expect(got[before]!.time).toBe(row._time);
      outcome.written++;
    } else {
      expect(got.length).toBe(before);
      expect(r, `record ${seq + 1}: ${JSON.stringify(record)}`).toEqual(expected);
      outcome.mapped++;
    }
  });
  return outcome;
}
