/**
 * PostgreSQL state store: being written (issue #11). Until then a PostgreSQL URL is refused.
 */
import { PipeError } from '../errors.js';
import type { StateStore } from './store.js';

export class PostgresStore {
  constructor(url: string, host: string) {
    void url;
    void host;
    throw new PipeError('PIPE_USAGE', 'PostgreSQL state is not available yet');
  }
}

export type _Check = StateStore;
