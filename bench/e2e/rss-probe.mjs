// Loaded with --import by the end-to-end benchmarks: reports the process's peak RSS (all threads) on exit.
import { writeSync } from 'node:fs';
process.on('exit', () => {
  try { writeSync(3, `${process.resourceUsage().maxRSS}\n`); } catch { /* no fd 3: not under the benchmark */ }
});
