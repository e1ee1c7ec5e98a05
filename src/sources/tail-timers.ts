/**
 * The tail source's timed work, run every `pollInterval` and whenever a deadline falls due:
 * partial lines flushed after `partialLineTimeout`, detached files closed `rotateWait` after they
 * stopped growing, held copies decided, released generations forgotten, and a stat of every file
 * and path in case the file system missed an event (network file systems, some containers).
 */
import { stat } from 'node:fs/promises';
import type { TailTracker } from './tail-tracker.js';

/** Does what is due at `now`; returns when something is next due (at most `poll` from now). */
export async function timedWork(t: TailTracker, now: number, poll: number, hint: (path: string) => void): Promise<number> {
  const { rotateWait, partialLineTimeout } = t.options;
  let next = Math.min(now + poll, t.expireReleased(now));
  const due = (at: number): boolean => {
    if (at <= now) return true;
    next = Math.min(next, at);
    return false;
  };
  for (const file of [...t.files.values()]) {
    const size = await file.size().catch(() => -1);
    if (file.attached) {
      // A rename or a replacement at this path that no event announced.
      const st = await stat(file.path, { bigint: true }).catch(() => undefined);
      if (!st || `${st.dev}:${st.ino}` !== file.key) hint(file.path);
    }
    const reader = file.reader;
    const done = !reader || file.gen!.cursor.done;
    if (reader && !done) {
      if (file.gzip ? size !== file.stuckAt : size !== reader.readPos) t.dirty.add(file);
      else if (partialLineTimeout > 0 && reader.held > 0 && due(file.lastActivity + partialLineTimeout)) {
        const slice = reader.flush();
        if (slice) t.outbox.push(t.chunk(file.gen!, slice));
      }
    } else if (!file.gen && size > 0) {
      const copyOf = file.pending?.copyOf;
      const original = copyOf ? [...t.files.values()].find((f) => f.gen?.cursor.id === copyOf) : undefined;
      const pending = file.pending!;
      // A copy is held while it grows (a long copy of a big file) and while its original moves away.
      if (pending.size !== size || !original?.attached) Object.assign(pending, { since: now, size, confirm: undefined });
      if (!original) t.recheck.add(file);
      else if (due(pending.since + rotateWait)) {
        // Decided only once the original was read again after that: a loop held up (a slow sink)
        // must not take a copy for a file of its own before it has seen the original's truncate.
        if (pending.confirm === undefined) {
          pending.confirm = original.reads;
          t.dirty.add(original);
          due(now + 50);
        } else if (original.reads > pending.confirm) await t.evaluate(file, 'final');
        else due(now + 50);
      }
    }
    // A detached file is closed once read to its end and quiet for rotateWait (its writer may still append).
    const atEnd = done || file.gzip || size === reader.readPos || size < 0;
    if (!file.attached && atEnd && !t.dirty.has(file) && due(file.lastActivity + rotateWait)) await t.drop(file);
  }
  return next;
}
