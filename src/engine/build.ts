/**
 * Builds a runnable pipeline from validated config: the source, the loader chain (declared, or the
 * first mapper's default), the mapper chain and the sink.
 */
import type { ComponentConfig, PipelineConfig } from '../config/load.js';
import { PipeError } from '../errors.js';
import { autoDecompress } from '../loaders/decompress.js';
import { validateComponentOptions } from '../config/options.js';
import type { ComponentModule } from '../spec.js';
import type { ComponentContext, Loader, Mapper, Sink, Source } from '../types.js';
import type { CollectPlan } from './collect.js';

export interface BuiltPipeline {
  source: Source & { concurrency?: number };
  sink: Sink;
  plan: CollectPlan;
  /** Every loader and mapper may run in worker threads. */
  parallel: boolean;
}

/** Loader types that decompress: listing one turns automatic detection off. */
const DECOMPRESSORS = new Set(['gzip']);

export type LoaderResolver = (type: string) => ComponentModule | undefined;

async function make<T>(c: ComponentConfig, ctx: ComponentContext): Promise<T> {
  try {
    return (await c.module.create(c.options, ctx)) as T;
  } catch (err) {
    if (err instanceof PipeError) throw err;
    throw new PipeError('PIPE_CONFIG_INVALID', `${c.path} ${c.type}: ${(err as Error).message}`, { cause: err });
  }
}

export async function buildPipeline(cfg: PipelineConfig, ctx: ComponentContext, loaderModule: LoaderResolver): Promise<BuiltPipeline> {
  const source = await make<BuiltPipeline['source']>(cfg.source, ctx);
  const sink = await make<Sink>(cfg.sink, ctx);
  const { plan, parallel } = await buildPlan(cfg, ctx, loaderModule);
  return { source, sink, plan, parallel };
}

/**
 * The loader chain (declared, or the first mapper's default) and the mapper chain; also built
 * inside each worker thread. `parallel` says whether every stage may run in a worker.
 */
export async function buildPlan(cfg: PipelineConfig, ctx: ComponentContext, loaderModule: LoaderResolver): Promise<{ plan: CollectPlan; parallel: boolean }> {
  const mappers: Mapper[] = [];
  for (const m of cfg.mappers) mappers.push(await make<Mapper>(m, ctx));
  const firstSpec = cfg.mappers[0]?.module.spec;
  let loaderConfigs: Array<{ type: string; options: Record<string, unknown>; module: ComponentModule }>;
  if (cfg.loader?.length) {
    loaderConfigs = cfg.loader;
  } else {
    const declared = firstSpec?.consumes === 'records' && firstSpec.defaultLoader ? firstSpec.defaultLoader : [{ type: 'lines' }];
    loaderConfigs = declared.map(({ type, ...options }) => {
      const module = loaderModule(type);
      if (!module) throw new PipeError('PIPE_INTERNAL', `mapper ${firstSpec?.type} declares an unknown default loader ${type}`);
      const checked = validateComponentOptions(module.spec, options, `${cfg.mappers[0]?.path ?? 'mappers'} default loader`);
      if (checked.problems.length) throw new PipeError('PIPE_INTERNAL', checked.problems.map((p) => `${p.path}: ${p.message}`).join('; '));
      return { type, module, options: checked.options };
    });
  }
  const loaders: Loader[] = [];
  for (const l of loaderConfigs) loaders.push((await l.module.create(l.options, ctx)) as Loader);
  if (loaders.length === 0 || loaders[loaders.length - 1]!.output !== 'records') {
    throw new PipeError('PIPE_CONFIG_INVALID', `${cfg.file}: loader: the last loader must produce records (lines, json or jsonl)`);
  }
  const parallel = cfg.mappers.every((m) => m.module.spec.parallel === true) && loaderConfigs.every((l) => l.module.spec.parallel === true);
  return {
    parallel,
    plan: {
      decompress: loaderConfigs.some((l) => DECOMPRESSORS.has(l.type)) ? undefined : autoDecompress,
      loaders, mappers,
      baseRows: firstSpec?.consumes !== 'records',
      batchSize: 500,
    },
  };
}
