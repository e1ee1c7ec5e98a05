/**
 * Reachability checks for `pipe validate --ping`, shared by the components whose `ping` looks at
 * the local file system. Each returns a short "ok: …" line or throws a PipeError saying what is wrong.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { PipeError, type ErrorCode } from './errors.js';
import type { Logger } from './types.js';

/** A logger for pings: the SDK's chatter is not wanted on a validation line. */
export const quietLogger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/** A directory (or a single file) that exists and can be read. */
export async function pingReadable(path: string, code: ErrorCode): Promise<string> {
  const abs = resolve(path);
  const st = await stat(abs).catch((err: NodeJS.ErrnoException) => {
    throw new PipeError(code, `${abs}: ${err.code === 'ENOENT' ? 'does not exist' : err.message}`, { cause: err });
  });
  const mode = st.isDirectory() ? constants.R_OK | constants.X_OK : constants.R_OK;
  await access(abs, mode).catch((err: unknown) => {
    throw new PipeError(code, `${abs}: not readable by this user (uid ${process.getuid?.() ?? '?'})`, { cause: err });
  });
  return `ok: ${st.isDirectory() ? 'directory' : 'file'} ${abs} is readable`;
}

/** A directory that can be written, or whose nearest existing ancestor can (it would be created). */
export async function pingWritable(path: string, code: ErrorCode): Promise<string> {
  const abs = resolve(path);
  let dir = abs;
  for (;;) {
    const st = await stat(dir).catch(() => undefined);
    if (st) {
      if (!st.isDirectory()) throw new PipeError(code, `${abs}: ${dir} is not a directory`);
      break;
    }
    const up = dirname(dir);
    if (up === dir) throw new PipeError(code, `${abs}: no existing ancestor directory`);
    dir = up;
  }
  await access(dir, constants.W_OK | constants.X_OK).catch((err: unknown) => {
    throw new PipeError(code, `${abs}: ${dir} is not writable by this user (uid ${process.getuid?.() ?? '?'})`, { cause: err });
  });
  return dir === abs ? `ok: directory ${abs} is writable` : `ok: ${abs} does not exist yet; ${dir} is writable, so it can be created`;
}
