/**
 * A collect plan from loader and mapper configurations already resolved and validated: what the
 * main thread and every worker thread build alike. Nothing here reads configuration files, so a
 * worker imports only this and the components themselves.
 */
import type { ComponentConfig } from '../config/load.js';
import { PipeError } from '../errors.js';
import { autoDecompress } from '../loaders/decompress.js';
import type { ComponentContext, Loader, Mapper } from '../types.js';
import type { CollectPlan } from './collect.js';

/** Loader types that decompress: listing one turns automatic detection off. */
const DECOMPRESSORS = new Set(['gzip']);

/**
 * Creates a component; an error its `create` throws that is not already a PipeError is a
 * configuration error naming the file, line and place of the component.
 */
export async function make<T>(c: ComponentConfig, ctx: ComponentContext, file: string): Promise<T> {
  try {
    return (await c.module.create(c.options, ctx)) as T;
  } catch (err) {
    if (err instanceof PipeError) throw err;
    throw new PipeError('PIPE_CONFIG_INVALID', `${file}:${c.line}: ${c.path} ${c.type}: ${(err as Error).message}`, { cause: err });
  }
}

/** `parallel` says whether every stage may run in a worker thread. */
export async function planOf(file: string, loaderConfigs: ComponentConfig[], mapperConfigs: ComponentConfig[], ctx: ComponentContext): Promise<{ plan: CollectPlan; parallel: boolean }> {
  const mappers: Mapper[] = [];
  for (const m of mapperConfigs) mappers.push(await make<Mapper>(m, ctx, file));
  const loaders: Loader[] = [];
  for (const l of loaderConfigs) loaders.push(await make<Loader>(l, ctx, file));
  if (loaders.length === 0 || loaders[loaders.length - 1]!.output !== 'records') {
    throw new PipeError('PIPE_CONFIG_INVALID', `${file}: loader: the last loader must produce records (lines, json or jsonl)`);
  }
  const parallel = [...mapperConfigs, ...loaderConfigs].every((c) => c.module.spec.parallel === true);
  return {
    parallel,
    plan: {
      decompress: loaderConfigs.some((l) => DECOMPRESSORS.has(l.type)) ? undefined : autoDecompress,
      loaders, mappers,
      baseRows: mapperConfigs[0]?.module.spec.consumes !== 'records',
      batchSize: 500,
    },
  };
}
