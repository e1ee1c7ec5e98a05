/**
 * `npm run bench`: every benchmark in one process, one table. Each row is a component measured
 * against a bare baseline over the same data in the same run, so the ratio means the same on any
 * machine. `npm run bench -- <filter>` runs the scenarios whose name contains the filter.
 */
import { cpus, totalmem } from 'node:os';
import type { BenchResult } from './mappers/harness.js';
import * as jsonLoader from './loaders/json.bench.js';
import * as linesLoader from './loaders/lines.bench.js';
import * as cloudtrail from './mappers/cloudtrail.bench.js';
import * as vpcflow from './mappers/vpcflow.bench.js';

const scenarios: Array<[string, () => Promise<BenchResult>]> = [
  ['loader json (in memory)', jsonLoader.run],
  ['loader json (streaming)', jsonLoader.runStreaming],
  ['loader lines', linesLoader.run],
  ['loader lines (split2)', linesLoader.runSplit2],
  ['mapper cloudtrail', cloudtrail.run],
  ['mapper vpcflow', vpcflow.run],
];

function pad(s: string | number, n: number, right = false): string {
  const t = String(s);
  return right ? t.padEnd(n) : t.padStart(n);
}

async function main(): Promise<void> {
  const filter = process.argv[2];
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  console.log(`pipe benchmarks on ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
  console.log(`${pad('scenario', 28, true)} ${pad('rows', 10)} ${pad('MB in', 8)} ${pad('s', 7)} ${pad('rows/s', 10)} ${pad('MB/s', 8)} ${pad('peak RSS', 9)} ${pad('baseline s', 10)} ${pad('ratio', 6)}`);
  for (const [name, run] of scenarios) {
    if (filter && !name.includes(filter)) continue;
    const r = await run();
    const rss = `${Math.round(process.resourceUsage().maxRSS / 1024)} MB`;
    console.log(`${pad(name, 28, true)} ${pad(r.rows, 10)} ${pad(r.mb.toFixed(1), 8)} ${pad(r.seconds.toFixed(3), 7)} ${pad(r.rowsPerSec, 10)} ${pad(r.mbPerSec.toFixed(1), 8)} ${pad(rss, 9)} ${pad(r.baselineSeconds.toFixed(3), 10)} ${pad(r.ratio.toFixed(2), 6)}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
