/**
 * Chaos: for each source, the real CLI SIGKILLed at seeded random instants round after round while
 * faults are injected (S3 503s and resets, CloudWatch throttling) and data keeps arriving, then run
 * to completion: nothing missing, nothing twice, nothing malformed.
 *
 * Short by default (PIPE_CHAOS_ROUNDS, default 3). Replay a failure with the seed it prints:
 *   PIPE_CHAOS_SEED=<seed> npx vitest run test/chaos
 * The long version: npm run chaos -- --rounds 50 [--seed S] [--source s3]
 */
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { runChaos, SOURCES, type ChaosSource } from './harness.js';

const SEED = process.env.PIPE_CHAOS_SEED ? Number(process.env.PIPE_CHAOS_SEED) : 20240301;
const ROUNDS = Number(process.env.PIPE_CHAOS_ROUNDS || 3);
const ONLY = process.env.PIPE_CHAOS_SOURCE ? (process.env.PIPE_CHAOS_SOURCE.split(',') as ChaosSource[]) : SOURCES;
const VERBOSE = process.env.PIPE_CHAOS_VERBOSE === '1';

describe(`chaos (seed ${SEED}, ${ROUNDS} rounds per source; replay with PIPE_CHAOS_SEED=${SEED})`, () => {
  it.each(ONLY.map((s, i) => [s, SEED + i * 1000] as const))('%s: kill -9 at random instants, then a full run: 0 missing, 0 duplicated, 0 malformed', async (source, seed) => {
    const report = await runChaos(source, { seed, rounds: ROUNDS, dir: tempDir(`pipe-chaos-${source}-`), log: VERBOSE ? (l) => console.log(l) : undefined });
    const replay = `replay: PIPE_CHAOS_SEED=${SEED} PIPE_CHAOS_ROUNDS=${ROUNDS} PIPE_CHAOS_SOURCE=${source} npx vitest run test/chaos\n${JSON.stringify(report, null, 1)}`;
    expect({
      missing: report.missing, duplicated: report.duplicated, malformed: report.malformed, unexpected: report.unexpected,
      duplicatesAfterKill: report.duplicatesAfterKill, badExits: report.badExits,
    }, replay).toEqual({ missing: 0, duplicated: 0, malformed: 0, unexpected: 0, duplicatesAfterKill: 0, badExits: [] });
    expect(report.expected, replay).toBeGreaterThan(0);
    expect(report.rows, replay).toBe(report.expected);
    // The kills must land mid-run, or the test proves nothing (some runs may finish first on a busy machine).
    expect(report.killed, replay).toBeGreaterThanOrEqual(Math.max(1, Math.floor(ROUNDS / 3)));
  }, 60_000 + ROUNDS * 15_000);
});
