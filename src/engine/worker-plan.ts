/**
 * The loaders and mappers a worker thread runs, built from the pipeline's already validated
 * configuration (WorkerInit): no pipeline file is read again, and only the modules those
 * components need are imported.
 */
import { importBuiltin, type DecodingKind } from '../builtin-modules.js';
import type { ComponentConfig, PipelineConfig } from '../config/load.js';
import { importComponent, isModuleSpecifier } from '../config/resolve.js';
import { PipeError } from '../errors.js';
import { writingRows, type BufferSource } from '../sinks/serialize.js';
import type { ComponentModule } from '../spec.js';
import type { StateStore } from '../state/store.js';
import type { Logger } from '../types.js';
import { planOf } from './plan.js';
import type { CollectPlan } from './collect.js';
import type { WireComponent, WorkerInit } from './wire.js';

/** The decoding half of a pipeline's configuration, as it crosses to a worker thread. */
export function wirePlan(cfg: Pick<PipelineConfig, 'file' | 'baseDir' | 'mappers'>, loaders: ComponentConfig[]): Omit<WorkerInit, 'partition'> {
  const strip = ({ type, path, line, options }: ComponentConfig): WireComponent => ({ type, path, line, options });
  return { file: cfg.file, baseDir: cfg.baseDir, loaders: loaders.map(strip), mappers: cfg.mappers.map(strip) };
}

async function resolveModule(kind: DecodingKind, type: string, baseDir: string): Promise<ComponentModule> {
  const found = isModuleSpecifier(type) ? await importComponent(type, baseDir) : await importBuiltin(kind, type);
  if (found && !('reason' in found)) return found;
  // The main thread resolved this very type moments ago: failing now is not a configuration error.
  throw new PipeError('PIPE_INTERNAL', `${kind} ${type} could not be loaded in a worker thread${found ? `: ${found.reason}` : ''}`);
}

/**
 * Parallel components use no store: one that tried would fail loudly rather than share state.
 * With the sink's partition (a pool's WorkerInit), rows are written as JSON as they are mapped,
 * into `buffers` when given.
 */
export async function workerPlan(init: Omit<WorkerInit, 'partition'> & Partial<Pick<WorkerInit, 'partition'>>, log: Logger, buffers?: BufferSource): Promise<CollectPlan> {
  const withModule = async (kind: DecodingKind, c: WireComponent): Promise<ComponentConfig> => ({ ...c, module: await resolveModule(kind, c.type, init.baseDir) });
  const mappers = await Promise.all(init.mappers.map((c) => withModule('mapper', c)));
  const loaders = await Promise.all(init.loaders.map((c) => withModule('loader', c)));
  const store = new Proxy({}, { get: () => { throw new PipeError('PIPE_INTERNAL', 'the state store is not available in worker threads'); } }) as StateStore;
  const { plan } = await planOf(init.file, loaders, mappers, { pipeline: '', store, log, baseDir: init.baseDir });
  return init.partition !== undefined ? writingRows(plan, init.partition, buffers) : plan;
}
