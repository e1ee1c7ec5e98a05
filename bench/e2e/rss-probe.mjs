// Loaded with --import by the end-to-end benchmarks: reports the process's peak RSS (KiB) and the
// CPU time of all its threads (µs, user + system) on exit.
import { writeSync } from 'node:fs';
process.on('exit', () => {
  const u = process.resourceUsage();
  try { writeSync(3, `${u.maxRSS} ${u.userCPUTime + u.systemCPUTime}\n`); } catch { /* no fd 3: not under the benchmark */ }
});
