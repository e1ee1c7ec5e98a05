/**
 * The s3 sink's housekeeping on open (see the protocol at the top of s3.ts): the owner record that
 * notices a replaced state, and the discarding of staging objects no commit recorded.
 */
import { PipeError } from '../errors.js';
import type { SinkContext } from '../types.js';
import type { SinkS3Api } from './s3-api.js';

/** Where a pipeline's staging objects and owner record live, under the sink's prefix. */
export const STAGING = '_pipe-tmp';
/** Uploads, copies and deletes in flight at once. */
const PARALLEL = 4;

/**
 * The run prefixes under a pipeline's staging area, listed BEFORE the live runs are read: a run
 * uploads its first staging object after it registered, so one listed here whose run is not live
 * afterwards belongs to a run that is gone. Listed after, it could be a run that registered since.
 */
export async function stagingRuns(api: SinkS3Api, prefix: string, pipeline: string, signal: AbortSignal): Promise<string[]> {
  const root = `${prefix}${STAGING}/${pipeline}/`;
  const runs: string[] = [];
  let token: string | undefined;
  do {
    const page = await api.list(root, { delimiter: '/', ...(token ? { continuationToken: token } : {}) }, signal);
    runs.push(...page.prefixes);
    token = page.next;
  } while (token);
  return runs;
}

/**
 * Deletes the staging objects under each run prefix `listed` (by stagingRuns, before `live` was
 * read) whose run is not in `live` (a run killed before its commit, whose recorded chunks were
 * rolled forward first); returns how many.
 */
export async function discardStaging(api: SinkS3Api, listed: string[], live: Set<string>, signal: AbortSignal): Promise<number> {
  let removed = 0;
  for (const runPrefix of listed) {
    if (live.has(runPrefix.split('/').at(-2)!)) continue;
    let next: string | undefined;
    do {
      const page = await api.list(runPrefix, next ? { continuationToken: next } : {}, signal);
      await eachLimited(page.keys, (k) => api.delete(k, signal));
      removed += page.keys.length;
      next = page.next;
    } while (next);
  }
  return removed;
}

/**
 * The prefix remembers which state its chunks were committed with
 * (`<prefix>_pipe-tmp/<pipeline>.owner.json`). A run with another state has no record of what was
 * delivered and would deliver it all again: refused unless the user says so.
 */
export async function checkS3SinkOwner(api: SinkS3Api, prefix: string, ctx: SinkContext): Promise<void> {
  const key = `${prefix}${STAGING}/${ctx.pipeline}.owner.json`;
  const text = await api.getText(key, ctx.signal);
  let owner: { stateId?: string; state?: string } | undefined;
  try {
    owner = text ? (JSON.parse(text) as { stateId?: string; state?: string }) : undefined;
  } catch {
    owner = undefined;
  }
  if (owner?.stateId && owner.stateId !== ctx.store.id && ctx.acceptNewState !== true) {
    throw new PipeError('PIPE_STATE_MISMATCH',
      `sink s3://${api.bucket}/${prefix} holds rows of pipeline ${ctx.pipeline} committed with another state `
      + `(${owner.state ?? '?'}, id ${owner.stateId}); ${ctx.store.location} has no record of them, so this run would collect everything again `
      + 'and duplicate every row. Restore that state, point --state at it, or pass --accept-new-state to start over on purpose');
  }
  if (owner?.stateId !== ctx.store.id) {
    await api.putText(key, JSON.stringify({ pipeline: ctx.pipeline, stateId: ctx.store.id, state: ctx.store.location }) + '\n', ctx.signal);
  }
}

/** Runs `fn` over `items`, PARALLEL at a time; the first failure is thrown once those started have settled. */
export async function eachLimited<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length && failure === undefined) {
      const item = items[next++]!;
      await fn(item).catch((err: unknown) => {
        failure ??= err;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
  if (failure !== undefined) throw failure;
}
