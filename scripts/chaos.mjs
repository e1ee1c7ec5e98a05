#!/usr/bin/env node
// The long chaos run: `npm run chaos -- --rounds N [--seed S] [--source files,s3,cloudwatch,tail] [--verbose]`.
// `--skip-build` uses dist/ as it is. Runs test/chaos with vitest, N kill rounds per source; a fresh random seed unless --seed is given
// (the seed is printed first, and again by any failing test, so a failure replays).
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    seed: { type: 'string' },
    source: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    'skip-build': { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error('chaos: --rounds must be a positive integer');
  process.exit(2);
}
const seed = values.seed ?? String(Math.floor(Math.random() * 2 ** 31));
console.error(`chaos: seed ${seed}, ${rounds} rounds per source (replay: npm run chaos -- --rounds ${rounds} --seed ${seed})`);
const env = { ...process.env, PIPE_CHAOS_SEED: seed, PIPE_CHAOS_ROUNDS: String(rounds) };
if (values.source) env.PIPE_CHAOS_SOURCE = values.source;
if (values.verbose) env.PIPE_CHAOS_VERBOSE = '1';
// The tests run the compiled CLI (dist/): build first unless told not to.
if (!values['skip-build']) {
  const build = spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
const r = spawnSync('npx', ['vitest', 'run', 'test/chaos'], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
