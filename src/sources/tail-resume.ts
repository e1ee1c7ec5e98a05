/**
 * What a restart finds. Every stored cursor names the device and inode its generation was last
 * read from; a file found there resumes at the cursor's offset only if it still holds the same
 * content (its fingerprint and the bytes before the offset match). A cursor whose file is gone or
 * changed is released, so that a file holding its content under another name and inode (the copy a
 * copytruncate made while pipe was stopped, or that copy compressed) continues it; one released by
 * an earlier run keeps its release time, so it is forgotten once its retention ends, restarts or
 * not. Every other file is new: at the pipeline's first run, `startAt` says where to start in it;
 * afterwards (it appeared while pipe was stopped, or its content changed) it is read from its start.
 */
import { TailFile } from './tail-file.js';
import { Generation } from './tail-lines.js';
import { probeOffsets, verify, type Probe, type TailCursor } from './tail-identity.js';
import { EMPTY, type TailTracker } from './tail-tracker.js';

export async function resume(t: TailTracker, paths: string[], stored: TailCursor[], firstRun: boolean, signal: AbortSignal,
  releasedAt: Record<string, number> = {}): Promise<void> {
  // Released by this restart, or still retained from an earlier run (then since that run's release).
  // Nothing of it went out in this process, so there is no mapper state to drop when it expires.
  const release = (c: TailCursor, from: string): void => t.release(new Generation(c), from, true, releasedAt[c.id] ?? Date.now());
  const opened: TailFile[] = [];
  for (const path of paths) {
    const file = await TailFile.open(path);
    if (!file || t.files.has(file.key)) {
      await file?.close();
      continue;
    }
    t.track(file);
    opened.push(file);
  }
  const changed = new Set<TailFile>();
  const unclaimed = new Map(stored.map((c) => [c.id, c]));
  for (const file of opened) {
    const mine = stored.filter((c) => `${c.dev}:${c.ino}` === file.key);
    if (!mine.length) continue;
    mine.forEach((c) => unclaimed.delete(c.id));
    const size = await file.size();
    // A finished gzip file of the same size is not decoded again to be recognised.
    let same = mine.find((c) => c.gzip && c.done && file.gzip && c.zsize === size);
    let probe: Probe | undefined;
    if (!same) {
      probe = await file.probe(probeOffsets(mine.map((cursor) => ({ cursor, checkpoints: [] }))), signal).catch((err: unknown) => {
        t.unreadable(file, err);
        return undefined;
      });
      same = probe && mine.find((c) => verify(c, probe!) === 'same');
    }
    for (const c of mine) if (c !== same) release(c, file.key);
    if (!same) {
      changed.add(file);
      continue;
    }
    const gen = new Generation(same);
    const moved = same.path !== file.path;
    if (probe) gen.adoptHead(probe.head);
    file.bind(gen, t.options.line, probe?.before.get(same.offset) ?? EMPTY);
    if (moved) t.outbox.push(t.chunk(gen));
    if (!same.done) t.dirty.add(file);
  }
  for (const c of unclaimed.values()) release(c, '');
  for (const file of opened) {
    if (!file.gen) await t.evaluate(file, firstRun && !changed.has(file) ? 'initial' : 'new');
  }
  t.indexDirty = true;
}
