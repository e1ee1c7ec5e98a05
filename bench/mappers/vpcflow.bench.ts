/**
 * vpcflow mapper: map per line (header-driven, v2 default fields), against splitting the same
 * lines on spaces. The lines are generated in the shape of the AWS examples with seeded values.
 */
import { create } from '../../src/mappers/vpcflow.js';
import { WRITTEN, type ComponentContext, type LineSink, type RecordContext } from '../../src/types.js';
import { prng, result, runIfMain, timeBest, type BenchResult } from './harness.js';

const LINES = 400_000;
const HEADER = 'version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status';

function ip(random: () => number): string {
  return `${10 + Math.floor(random() * 200)}.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}`;
}

/** A header line and then records: mostly OK flows, some REJECTs, 2% NODATA as AWS writes them. */
export function generateLines(count = LINES, seed = 11): string[] {
  const random = prng(seed);
  const lines = [HEADER];
  let t = 1709251200;
  for (let i = 1; i < count; i++) {
    t += Math.floor(random() * 3);
    const eni = `eni-${Math.floor(random() * 0xfffffff).toString(16).padStart(17, '0')}`;
    if (random() < 0.02) {
      lines.push(`2 123456789010 ${eni} - - - - - - - ${t} ${t + 60} - NODATA`);
      continue;
    }
    const packets = 1 + Math.floor(random() * 5000);
    lines.push(
      `2 123456789010 ${eni} ${ip(random)} ${ip(random)} ${Math.floor(random() * 65536)} ${[22, 80, 443, 3389, 5432][i % 5]} ` +
        `${random() < 0.9 ? 6 : 17} ${packets} ${packets * (40 + Math.floor(random() * 1400))} ${t} ${t + 60} ${random() < 0.8 ? 'ACCEPT' : 'REJECT'} OK`,
    );
  }
  return lines;
}

/** The generated lines, their size, and a vpcflow mapper for one artifact's worth of them. */
function setup() {
  const lines = generateLines();
  const bytes = lines.reduce((n, s) => n + Buffer.byteLength(s) + 1, 0);
  const ctx = { pipeline: 'bench', log: { debug() {}, info() {}, warn() {}, error() {} } } as unknown as ComponentContext;
  const ref = { identity: 'bench#1', uri: 's3://bench/AWSLogs/123456789010/vpcflowlogs/us-east-1/2024/03/01/x.log.gz' };
  return { lines, bytes, ref, mapper: create({ skipNoData: false }, ctx) };
}

export async function run(): Promise<BenchResult> {
  const { lines, bytes, ref, mapper } = setup();

  const baseline = timeBest(() => {
    let n = 0;
    for (const line of lines) n += line.split(' ').length > 1 ? 1 : 0;
    return n;
  });
  const mapped = timeBest(() => {
    const artifactMapper = mapper.forArtifact(ref);
    const rc: RecordContext = { artifact: ref, seq: 0, remember() {} };
    let n = 0;
    for (let i = 0; i < lines.length; i++) {
      rc.seq = i;
      const r = artifactMapper.map(lines[i], rc);
      if (r !== null && typeof r === 'object' && '_id' in r) n++;
    }
    return n;
  });
  if (mapped.count !== lines.length - 1) throw new Error(`vpcflow bench: ${mapped.count} rows from ${lines.length - 1} lines`);
  return result('mapper vpcflow (map vs split)', mapped.count, bytes, mapped.seconds, baseline.seconds);
}

/**
 * The fast path (`write`, used when vpcflow is the last mapper and rows are written where they
 * are mapped) against what it replaces: `map`, then JSON.stringify of the row.
 */
export async function runWrite(): Promise<BenchResult> {
  const { lines, bytes, ref, mapper } = setup();
  const each = (f: (am: ReturnType<typeof mapper.forArtifact>, line: string, rc: RecordContext) => number) => () => {
    const am = mapper.forArtifact(ref);
    const rc: RecordContext = { artifact: ref, seq: 0, remember() {} };
    let chars = 0;
    for (let i = 0; i < lines.length; i++) {
      rc.seq = i;
      chars += f(am, lines[i]!, rc);
    }
    return chars;
  };
  const baseline = timeBest(each((am, line, rc) => {
    const r = am.map(line, rc);
    return r !== null && typeof r === 'object' && '_id' in r ? JSON.stringify(r).length : 0;
  }));
  let written = 0;
  const sink: LineSink = {
    line: (json) => (written += json.length),
    copy: () => { throw new Error('vpcflow writes strings, never bytes'); },
  };
  const fast = timeBest(each((am, line, rc) => {
    written = 0;
    const r = am.write!(line, rc, sink);
    if (r === WRITTEN) return written;
    return r !== null && typeof r === 'object' && '_id' in r ? JSON.stringify(r).length : 0;
  }));
  // The same JSON, character for character (the tests compare it line by line).
  if (fast.count !== baseline.count) throw new Error(`vpcflow write bench: ${fast.count} characters against ${baseline.count}`);
  return result('mapper vpcflow (write vs map + JSON.stringify)', lines.length - 1, bytes, fast.seconds, baseline.seconds);
}

runIfMain(import.meta.url, run);
