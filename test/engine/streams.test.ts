/** The engine's stream path: chunks become batches whose cursors commit with their rows. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPipeline } from '../../src/engine/build.js';
import { PipelineRun } from '../../src/engine/run.js';
import { loadPipeline } from '../../src/config/load.js';
import { makeResolver } from '../../src/config/resolve.js';
import { builtins } from '../../src/registry.js';
import { SqliteStore } from '../../src/state/sqlite.js';
import type { ComponentModule } from '../../src/spec.js';
import type { Logger, ReadContext, StreamChunk, StreamSource } from '../../src/types.js';
import { readSink } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { writeFileSync } from 'node:fs';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A stream of numbered lines that resumes from its committed cursor. */
const counter: ComponentModule<StreamSource> = {
  spec: { kind: 'source', type: 'counter', summary: 'numbered lines', options: { total: { type: 'integer', required: true, description: 'lines' } } },
  create(options) {
    const total = options.total as number;
    return {
      kind: 'streams',
      async *read(ctx: ReadContext): AsyncGenerator<StreamChunk> {
        let next = ((await ctx.position('counter')) as { next: number } | undefined)?.next ?? 0;
        while (next < total && !ctx.signal.aborted) {
          const records = [];
          for (let i = 0; i < 7 && next + i < total; i++) records.push(`line ${next + i}`);
          yield { ref: { identity: 'counter', uri: 'counter://x' }, records, firstSeq: next, cursor: { stream: 'counter', value: { next: next + records.length } }, bytes: 10 };
          next += records.length;
        }
      },
    };
  },
};

async function runOnce(dir: string, total: number, stopAfterRows?: number) {
  const file = join(dir, 'p.yml');
  writeFileSync(file, `name: s\nsource: { type: counter, total: ${total} }\nsink: { type: jsonl, dir: ${join(dir, 'out')}, maxRows: 5 }\n`);
  const resolve = makeResolver({ ...builtins, source: { ...builtins.source, counter: counter as ComponentModule } });
  const cfg = await loadPipeline(file, { env: {}, resolve });
  const store = new SqliteStore(join(dir, 's.db'), 'h');
  const ctx = { pipeline: 's', store, log: quiet, baseDir: dir };
  const built = await buildPipeline(cfg, ctx, (t) => builtins.loader[t]);
  const stop = new AbortController();
  const run = new PipelineRun({ pipeline: 's', command: 'run', store, host: 'h', runId: `r${Date.now()}`, once: true, retryFailed: false, dryRun: false, scope: {}, stop: stop.signal, log: quiet }, built, ctx);
  if (stopAfterRows !== undefined) {
    const t = setInterval(() => { if (run.stats.rows >= stopAfterRows) stop.abort(); }, 1);
    const s = await run.run();
    clearInterval(t);
    await store.close();
    return s;
  }
  const s = await run.run();
  await store.close();
  return s;
}

describe('stream sources', () => {
  it('commit cursors with rows and resume after an interruption without loss or repeats', async () => {
    const dir = tempDir();
    const first = await runOnce(dir, 200, 20);
    expect(first.exitCode).toBe(130);
    const partial = readSink(join(dir, 'out')).length;
    expect(partial).toBeGreaterThanOrEqual(20);
    expect(partial).toBeLessThan(200);
    const second = await runOnce(dir, 200);
    expect(second.exitCode).toBe(0);
    const rows = readSink(join(dir, 'out'));
    expect(rows.map((r) => r.message)).toEqual(Array.from({ length: 200 }, (_, i) => `line ${i}`));
    expect(new Set(rows.map((r) => r._id)).size).toBe(200);
    expect(rows[0]!._source).toBe('counter://x');
  });
});
