/** SIGINT/SIGTERM for long-running commands: the first stops reading (then flush and commit), a second quits at once. */
import { PipeError } from '../errors.js';
import type { Logger } from '../types.js';

/** Aborts `stop` on the first signal; returns the function that removes the handlers. */
export function stopOnSignals(log: Logger, stop: AbortController): () => void {
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) process.exit(130);
    log.info(`${sig}: stopping: flushing and committing what was read (again to quit at once)`);
    stop.abort(new PipeError('PIPE_INTERRUPTED', `interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
