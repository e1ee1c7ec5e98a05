/**
 * `pipe validate`: every problem of every file, with its YAML path and line; with `--ping`, also
 * whether each component that can tell is reachable (bucket listable, log group present, directory
 * readable or writable), one line per component.
 */
import { validatePipelineFile, type ComponentConfig } from '../config/load.js';
import { formatProblem } from '../config/problems.js';
import { toPipeError } from '../errors.js';
import { captureProcessWarnings, StderrLogger } from '../log.js';
import { pipelineFiles, resolver } from './common.js';

export interface ValidateFlags {
  ping?: boolean;
}

/** One line per component: `  source s3: ok: …` or `  sink jsonl: FAILED: … [CODE]`; false if any failed. */
async function pingComponents(components: ComponentConfig[]): Promise<boolean> {
  let ok = true;
  for (const c of components) {
    const ping = c.module.spec.ping;
    const name = `  ${c.path} ${c.type}`;
    if (!ping) {
      process.stdout.write(`${name}: nothing to ping\n`);
      continue;
    }
    try {
      process.stdout.write(`${name}: ${await ping(c.options)}\n`);
    } catch (err) {
      ok = false;
      const e = toPipeError(err, 'PIPE_SOURCE_FAILED');
      process.stdout.write(`${name}: FAILED: ${e.message} [${e.code}]\n`);
    }
  }
  return ok;
}

export async function validateCommand(args: string[], flags: ValidateFlags = {}): Promise<number> {
  // A ping loads the AWS SDK, whose Node-version notice must not reach the user's terminal.
  if (flags.ping) captureProcessWarnings(new StderrLogger({ format: 'text', level: 'warn' }));
  let bad = 0;
  for (const file of await pipelineFiles(args)) {
    const v = await validatePipelineFile(file, { env: process.env, resolve: resolver });
    if (v.problems.length) {
      bad++;
      for (const p of v.problems) process.stderr.write(`${formatProblem(file, p)}\n`);
      continue;
    }
    const cfg = v.config!;
    process.stdout.write(`${file}: ok (pipeline ${cfg.name})\n`);
    if (flags.ping && !(await pingComponents([cfg.source, cfg.sink]))) bad++;
  }
  return bad ? 2 : 0;
}
