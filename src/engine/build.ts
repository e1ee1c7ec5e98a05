/**
 * Builds a runnable pipeline from validated config: the source, the loader chain (declared, or the
 * first mapper's default), the mapper chain and the sink.
 */
import type { ComponentConfig, PipelineConfig } from '../config/load.js';
import { PipeError } from '../errors.js';
import { validateComponentOptions } from '../config/options.js';
import type { ComponentModule } from '../spec.js';
import type { ComponentContext, Sink, Source } from '../types.js';
import type { CollectPlan } from './collect.js';
import { writingRows } from '../sinks/serialize.js';
import { make, planOf } from './plan.js';

export interface BuiltPipeline {
  source: Source & { concurrency?: number };
  sink: Sink;
  plan: CollectPlan;
  /** Every loader and mapper may run in worker threads. */
  parallel: boolean;
  /** The loader chain as configured (or defaulted), for worker threads to build again. */
  loaders: ComponentConfig[];
}

export type LoaderResolver = (type: string) => ComponentModule | undefined | Promise<ComponentModule | undefined>;

export async function buildPipeline(cfg: PipelineConfig, ctx: ComponentContext, loaderModule: LoaderResolver): Promise<BuiltPipeline> {
  const source = await make<BuiltPipeline['source']>(cfg.source, ctx, cfg.file);
  const sink = await make<Sink>(cfg.sink, ctx, cfg.file);
  const { plan, parallel, loaders } = await buildPlan(cfg, ctx, loaderModule);
  // Decoded on the main thread, rows are written as JSON as they are mapped, when the sink says how.
  return { source, sink, plan: sink.serializer ? writingRows(plan, sink.serializer.partition) : plan, parallel, loaders };
}

/**
 * The loader chain to run: the pipeline's own, or the first mapper's default (its options
 * validated here, on the main thread: worker threads receive the result).
 */
export async function loaderChain(cfg: Pick<PipelineConfig, 'loader' | 'mappers'>, loaderModule: LoaderResolver): Promise<ComponentConfig[]> {
  if (cfg.loader?.length) return cfg.loader;
  const firstSpec = cfg.mappers[0]?.module.spec;
  const declared = firstSpec?.consumes === 'records' && firstSpec.defaultLoader ? firstSpec.defaultLoader : [{ type: 'lines' }];
  const chain: ComponentConfig[] = [];
  for (const [i, { type, ...options }] of declared.entries()) {
    const module = await loaderModule(type);
    if (!module) throw new PipeError('PIPE_INTERNAL', `mapper ${firstSpec?.type} declares an unknown default loader ${type}`);
    const path = `${cfg.mappers[0]?.path ?? 'mappers'} default loader`;
    const checked = validateComponentOptions(module.spec, options, path);
    if (checked.problems.length) throw new PipeError('PIPE_INTERNAL', checked.problems.map((p) => `${p.path}: ${p.message}`).join('; '));
    chain.push({ type, path: `${path}[${i}]`, line: cfg.mappers[0]?.line ?? 0, module, options: checked.options });
  }
  return chain;
}

/** The loader and mapper chains; also built inside each worker thread (see planOf). */
export async function buildPlan(cfg: Pick<PipelineConfig, 'file' | 'loader' | 'mappers'>, ctx: ComponentContext, loaderModule: LoaderResolver): Promise<{ plan: CollectPlan; parallel: boolean; loaders: ComponentConfig[] }> {
  const loaders = await loaderChain(cfg, loaderModule);
  return { ...(await planOf(cfg.file, loaders, cfg.mappers, ctx)), loaders };
}
