/** `pipe validate`: every problem of every file, with its YAML path and line. */
import { validatePipelineFile } from '../config/load.js';
import { formatProblem } from '../config/problems.js';
import { pipelineFiles, resolver } from './common.js';

export async function validateCommand(args: string[]): Promise<number> {
  let bad = 0;
  for (const file of await pipelineFiles(args)) {
    const v = await validatePipelineFile(file, { env: process.env, resolve: resolver });
    if (v.problems.length) {
      bad++;
      for (const p of v.problems) process.stderr.write(`${formatProblem(file, p)}\n`);
    } else {
      process.stdout.write(`${file}: ok (pipeline ${v.config!.name})\n`);
    }
  }
  return bad ? 2 : 0;
}
