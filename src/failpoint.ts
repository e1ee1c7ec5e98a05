/**
 * Failpoints for the crash tests: `PIPE_FAILPOINT=sink:after-commit@3` kills this process with
 * SIGKILL the third time that point is reached, so the tests can stop a run inside each window of
 * the commit protocol, not only at random instants. Unset in normal use: one string compare.
 */
const spec = process.env.PIPE_FAILPOINT;
const [target, nth] = spec ? spec.split('@') : [];
let hits = 0;

export function failpoint(name: string): void {
  if (target !== name) return;
  if (++hits >= Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
}
