/** The AWS SDK's own logger, routed to debug: nothing it says may reach the user's terminal uninvited. */
import type { Logger } from '../types.js';

export type SdkLogger = Record<'debug' | 'info' | 'warn' | 'error' | 'trace', (...a: unknown[]) => void>;

export function sdkLogger(log: Logger): SdkLogger {
  const line = (...args: unknown[]): void => log.debug(`aws sdk: ${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ').replace(/\s+/g, ' ')}`);
  return { debug: () => {}, trace: () => {}, info: () => {}, warn: line, error: line };
}
