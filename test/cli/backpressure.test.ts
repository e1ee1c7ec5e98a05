/**
 * Backpressure: a deliberately slow sink (a third-party component loaded by module specifier)
 * must slow the reading, so memory stays bounded while a large input waits.
 */
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { collect, spawnCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const SLOW_SINK = `
import { writeFileSync } from 'node:fs';
export const SlowSink = {
  spec: { kind: 'sink', type: 'slow', summary: 'test sink', options: { report: { type: 'string', required: true, description: 'where to report' } } },
  create(options) {
    let writes = 0, rows = 0, ctx;
    return {
      async open(c) { ctx = c; },
      async write(batch) {
        writes++; rows += batch.rows.length;
        await new Promise((r) => setTimeout(r, 15));
        if (writes === 150) writeFileSync(options.report, JSON.stringify({ rows, rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed }));
        await ctx.commit([], [batch]);
      },
      async flush() {},
      async close() {},
    };
  },
};
`;

describe('backpressure', () => {
  it('a slow sink keeps memory bounded on a large input', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'slow-sink.mjs'), SLOW_SINK);
    // 1.5 million lines, ~300 MB uncompressed, a few MB of gzip.
    const gz = createGzip({ level: 1 });
    const outFile = createWriteStream(join(dir, 'big.log.gz'));
    gz.pipe(outFile);
    const line = 'x'.repeat(180);
    let chunk = '';
    for (let i = 0; i < 1_500_000; i++) {
      chunk += `${i} ${line}\n`;
      if (chunk.length > 1 << 20) {
        if (!gz.write(chunk)) await once(gz, 'drain');
        chunk = '';
      }
    }
    gz.end(chunk);
    await once(outFile, 'close');
    const report = join(dir, 'report.json');
    const file = join(dir, 'p.yml');
    writeFileSync(file, `name: bp\nstate: ${join(dir, 's.db')}\nsource: { type: files, path: ${join(dir, 'big.log.gz')} }\nsink: { type: ./slow-sink.mjs#SlowSink, report: ${report} }\n`);
    const child = spawnCli(['run', file, '--no-progress']);
    const done = collect(child);
    let measured: { rows: number; rss: number } | undefined;
    for (let i = 0; i < 600 && !measured; i++) {
      await new Promise((r) => setTimeout(r, 50));
      try { measured = JSON.parse(readFileSync(report, 'utf8')) as { rows: number; rss: number }; } catch { /* not yet */ }
    }
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code, r.stderr).toBe(130);
    expect(measured).toBeDefined();
    // 150 slow writes of 500 rows: the reader waited instead of buffering 300 MB.
    expect(measured!.rows).toBe(150 * 500);
    expect(measured!.rss).toBeLessThan(200 * 1024 * 1024);
  });
});
