/** What a person sees: the progress view rendered into a fake terminal, and through a real pty. */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatBytes, num, progressFacts, renderProgressLine, TtyProgress } from '../../src/engine/progress.js';
import type { RunStats } from '../../src/engine/run.js';
import { BIN } from '../helpers/cli.js';
import { writeCloudTrail } from '../helpers/data.js';
import { tempDir } from '../helpers/tmp.js';

function stats(over: Partial<RunStats> = {}): RunStats {
  return {
    startedAt: 1_000_000, discovered: 0, unchanged: 0, previouslyFailed: 0, inFlight: 0, done: 0, failed: 0,
    rows: 0, rowErrors: 0, skipped: 0, filtered: 0, bytesIn: 0, listingDone: false, ...over,
  };
}

/** Applies the escape sequences TtyProgress uses to a screen of lines, as a terminal would. */
function screen(output: string): string[] {
  const lines: string[] = [''];
  let row = 0;
  for (let i = 0; i < output.length; i++) {
    const esc = /^\x1b\[(\d*)([FJ])/.exec(output.slice(i));
    if (esc) {
      if (esc[2] === 'F') row = Math.max(0, row - Number(esc[1] || 1));
      else lines.splice(row + 1), (lines[row] = '');
      i += esc[0].length - 1;
    } else if (output[i] === '\n') {
      row++;
      lines[row] ??= '';
    } else {
      lines[row] = (lines[row] ?? '') + output[i];
    }
  }
  return lines.filter((l, i) => l !== '' || i < row);
}

describe('progress view', () => {
  it('shows start, middle and end as a person reads them', () => {
    expect(renderProgressLine({ name: 'ct', stats: stats({ discovered: 3 }) }, 1_000_500))
      .toBe('ct [····················] 0/? artifacts  0 rows  0.0 MB/s');
    const mid = renderProgressLine({ name: 'ct', stats: stats({ discovered: 10, listingDone: true, done: 4, failed: 1, rows: 12_345, bytesIn: 5e6 }) }, 1_002_000);
    expect(mid).toBe('ct [##########..........] 5/10 artifacts  12,345 rows  2.5 MB/s  1 failed  ETA 2.0s');
    const end = renderProgressLine({ name: 'ct', stats: stats({ discovered: 10, unchanged: 2, listingDone: true, done: 8, rows: 20_000, bytesIn: 8e6 }) }, 1_004_000);
    expect(end).toBe('ct [####################] 8/8 artifacts  20,000 rows  2.0 MB/s');
    expect(progressFacts(stats({ rows: 100 }), 1_002_000).rows_per_s).toBe(50);
    expect(formatBytes(1536)).toBe('1.5 KiB');
  });

  it('redraws in place, one line per pipeline, and clears for log lines', () => {
    let out = '';
    const a = stats({ discovered: 2 });
    const b = stats({ discovered: 1 });
    const p = new TtyProgress((s) => (out += s), () => 60);
    p.add({ name: 'one', stats: a });
    p.add({ name: 'two', stats: b });
    p.draw();
    a.rows = 5;
    p.draw();
    let view = screen(out);
    expect(view).toHaveLength(2);
    expect(view[0]).toMatch(/^one \[.*\] 0\/\? artifacts {2}5 rows/);
    expect(view[1]).toMatch(/^two /);
    p.clear();
    out += 'pipe: a log line\n';
    p.draw();
    view = screen(out);
    expect(view[0]).toBe('pipe: a log line');
    expect(view.slice(1).map((l) => l.split(' ')[0])).toEqual(['one', 'two']);
    expect(view.every((l) => l.length <= 59)).toBe(true);
    p.stop();
  });

  it('appears on a real pseudo-terminal and is gone at the end, leaving the summary', async () => {
    const dir = tempDir();
    writeCloudTrail(join(dir, 'in'), 30, 200);
    const file = join(dir, 'p.yml');
    writeFileSync(file, `name: tty\nstate: ${join(dir, 's.db')}\nsource: { type: files, path: ${join(dir, 'in')} }\nmappers: [cloudtrail]\nsink: { type: jsonl, dir: ${join(dir, 'out')} }\n`);
    // util-linux `script` gives the child a real pty, so stderr.isTTY is true as in a terminal.
    const child = spawn('script', ['-qfec', `${process.execPath} ${BIN} run ${file}`, '/dev/null'], { env: { ...process.env, COLUMNS: '100' } });
    let raw = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (raw += d));
    const code = await new Promise((r) => child.on('close', r));
    expect(code).toBe(0);
    expect(raw).toMatch(/tty \[[#.·]{20}\] \d+\/(\d+|\?) artifacts/);
    const view = screen(raw.replace(/\r/g, ''));
    expect(view.at(-1)).toMatch(/^pipe: tty: 30 artifacts, 6,000 rows, .* 0 failed/);
    expect(view.some((l) => l.startsWith('tty ['))).toBe(false);
  });
});

describe('num', () => {
  it.each([0, 7, 999, 1000, 12345, 999999, 1000000, 114000, 1234567890, -1234, 12.6])('%d as toLocaleString en-US would write it', (n) => {
    expect(num(n)).toBe(Math.round(n).toLocaleString('en-US'));
  });
});
