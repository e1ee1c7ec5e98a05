/**
 * `pipe validate`: every problem of every file, with its YAML path and line, including what a
 * component's own `create` refuses (as `pipe run` would); with `--ping`, also
 * whether each component that can tell is reachable (bucket listable, log group present, directory
 * readable or writable), one line per component.
 */
import { hostname } from 'node:os';
import { importBuiltin } from '../builtin-modules.js';
import { validatePipelineFile, type ComponentConfig, type PipelineConfig } from '../config/load.js';
import { formatProblem } from '../config/problems.js';
import { buildPipeline } from '../engine/build.js';
import { toPipeError } from '../errors.js';
import { captureProcessWarnings, StderrLogger } from '../log.js';
import { quietLogger } from '../ping.js';
import { redactText } from '../redact.js';
import { SqliteStore } from '../state/sqlite.js';
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

/**
 * What `pipe run` would refuse on building the pipeline, found by building it the same way
 * (buildPipeline): a component's own `create` refusing its options (a third-party one may check
 * more than its spec says), or a loader chain that ends before records. It is built with an empty
 * in-memory state (a mapper may read its remembered keys) and dropped unopened.
 */
async function buildProblem(cfg: PipelineConfig): Promise<string | undefined> {
  const store = new SqliteStore(':memory:', hostname());
  try {
    await buildPipeline(cfg, { pipeline: cfg.name, store, log: quietLogger, baseDir: cfg.baseDir }, (type) => importBuiltin('loader', type));
    return undefined;
  } catch (err) {
    const e = toPipeError(err, 'PIPE_CONFIG_INVALID');
    return `${redactText(e.message)} [${e.code}]`;
  } finally {
    await store.close();
  }
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
    const refused = await buildProblem(cfg);
    if (refused) {
      bad++;
      process.stderr.write(`${refused}\n`);
      continue;
    }
    process.stdout.write(`${file}: ok (pipeline ${cfg.name})\n`);
    if (flags.ping && !(await pingComponents([cfg.source, cfg.sink]))) bad++;
  }
  return bad ? 2 : 0;
}
