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
import * as s3Source from './sources/s3.bench.js';
import * as tailLatency from './sources/tail-latency.bench.js';
import * as e2e from './e2e/pipeline.bench.js';
import * as scale from './scale/queue.bench.js';

type Scenario = () => Promise<BenchResult | BenchResult[]>;

// The s3 scenario comes first: its S3 server runs in this process, whose heap the in-process
// benchmarks below grow to a gigabyte, and the server's GC pauses would be charged to the source.
const scenarios: Array<[string, Scenario]> = [
  ['source s3', s3Source.run],
  ['loader json (in memory)', jsonLoader.run],
  ['loader json (streaming)', jsonLoader.runStreaming],
  ['loader json (records as bytes, cloudtrail)', jsonLoader.runRaw],
  ['loader lines', linesLoader.run],
  ['loader lines (split2)', linesLoader.runSplit2],
  ['mapper cloudtrail', cloudtrail.run],
  ['mapper vpcflow', vpcflow.run],
  ['mapper vpcflow (write)', vpcflow.runWrite],
  ['source tail (append-to-commit latency)', tailLatency.table],
  ['e2e cloudtrail', e2e.cloudTrail],
  ['e2e vpcflow', e2e.vpcFlow],
  ['e2e startup', e2e.startup],
  ['e2e 10,000 artifacts', e2e.manySmall],
  ['e2e 1 GB document', e2e.hugeDocument],
  ['scale (queue, 1-3 workers, PostgreSQL)', scale.run],
];

function pad(s: string | number, n: number, right = false): string {
  const t = String(s);
  return right ? t.padEnd(n) : t.padStart(n);
}

async function main(): Promise<void> {
  const filter = process.argv[2];
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  console.log(`pipe benchmarks on ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
  console.log(`${pad('scenario', 36, true)} ${pad('rows', 10)} ${pad('MB in', 8)} ${pad('s', 7)} ${pad('rows/s', 10)} ${pad('MB/s', 8)} ${pad('peak RSS', 9)} ${pad('baseline s', 10)} ${pad('ratio', 6)} ${pad('CPU s', 7)} ${pad('base CPU', 8)}`);
  for (const [name, run] of scenarios) {
    if (filter && !name.includes(filter)) continue;
    const out = await run();
    for (const r of Array.isArray(out) ? out : [out]) {
      // End-to-end scenarios report the child's peak; in-process ones this process's so far.
      const peak = 'peakRssMb' in r ? (r as { peakRssMb: number }).peakRssMb : Math.round(process.resourceUsage().maxRSS / 1024);
      // End-to-end rows also give CPU time (all threads): under load from other processes it says
      // more than wall time about the work done.
      const { cpuSeconds, baselineCpuSeconds } = r as { cpuSeconds?: number; baselineCpuSeconds?: number };
      console.log(`${pad(r.name, 36, true)} ${pad(r.rows, 10)} ${pad(r.mb.toFixed(1), 8)} ${pad(r.seconds.toFixed(3), 7)} ${pad(r.rowsPerSec, 10)} ${pad(r.mbPerSec.toFixed(1), 8)} ${pad(peak ? `${peak} MB` : '-', 9)} ${pad(r.baselineSeconds.toFixed(3), 10)} ${pad(r.ratio.toFixed(2), 6)} ${pad(cpuSeconds?.toFixed(2) ?? '', 7)} ${pad(baselineCpuSeconds?.toFixed(2) ?? '', 8)}`);
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
