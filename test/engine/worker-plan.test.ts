import { describe, expect, it } from 'vitest';
import { builtinModuleTypes, importBuiltin } from '../../src/builtin-modules.js';
import { loadPipeline } from '../../src/config/load.js';
import { makeResolver } from '../../src/config/resolve.js';
import { buildPlan } from '../../src/engine/build.js';
import { wirePlan, workerPlan } from '../../src/engine/worker-plan.js';
import { builtins } from '../../src/registry.js';
import type { Logger } from '../../src/types.js';
import { tempDir } from '../helpers/tmp.js';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';

const log: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

describe('worker plans', () => {
  it.each(['source', 'loader', 'mapper', 'sink'] as const)('the lazy %s table names the same modules as the registry', async (kind) => {
    expect(builtinModuleTypes(kind).sort()).toEqual(Object.keys(builtins[kind]).sort());
    for (const type of builtinModuleTypes(kind)) expect(await importBuiltin(kind, type)).toBe(builtins[kind][type]);
    expect(await importBuiltin(kind, 'no-such-type')).toBeUndefined();
  });

  it('rebuilds the main thread plan from the wire form: default loader, options and a module specifier', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'upper.mjs'), `export const spec = { kind: 'mapper', type: 'upper', parallel: true, options: {} };
export function create() { return { forArtifact: () => ({ map: (v) => ({ ...v, up: true }) }) }; }\n`);
    const file = join(dir, 'p.yml');
    writeFileSync(file, `name: w\nsource: { type: files, path: ${dir} }\nmappers: [vpcflow, { type: set, fields: { team: blue } }, ./upper.mjs]\nsink: { type: jsonl, dir: ${join(dir, 'out')} }\n`);
    const cfg = await loadPipeline(file, { env: {}, resolve: makeResolver(builtins) });
    const ctx = { pipeline: 'w', store: {} as never, log, baseDir: dir };
    const main = await buildPlan(cfg, ctx, (t) => builtins.loader[t]);
    const wire = structuredClone(wirePlan(cfg, main.loaders));
    expect(wire.loaders.map((l) => l.type)).toEqual(['lines']);
    expect(wire.mappers.map((m) => m.type)).toEqual(['vpcflow', 'set', './upper.mjs']);
    const plan = await workerPlan(wire, log);
    expect(plan.loaders).toHaveLength(1);
    expect(plan.mappers).toHaveLength(3);
    expect(plan.baseRows).toBe(main.plan.baseRows);
    expect(plan.decompress).toBe(main.plan.decompress);
    const row = plan.mappers[1]!.forArtifact({ identity: 'a', uri: 'file:///a' }).map({ x: 1 }, { seq: 0 } as never);
    expect(row).toMatchObject({ x: 1, team: 'blue' });
  });

  it('fails loudly, as an internal error, when a component cannot be loaded in the worker', async () => {
    await expect(workerPlan({ file: 'p.yml', baseDir: '/nonexistent', loaders: [], mappers: [{ type: 'nope', path: 'mappers[0]', line: 1, options: {} }] }, log))
      .rejects.toMatchObject({ code: 'PIPE_INTERNAL', message: 'mapper nope could not be loaded in a worker thread' });
  });
});

describe('a resolver over the lazy table', () => {
  it('resolves built-ins by name and says what a misplaced or misspelt one is', async () => {
    const { lazyBuiltins } = await import('../../src/builtin-modules.js');
    const resolve = makeResolver(lazyBuiltins);
    expect(await resolve('mapper', 'cloudtrail', '/')).toBe(builtins.mapper.cloudtrail);
    expect(await resolve('sink', 's3', '/')).toBe(builtins.sink.s3);
    expect(await resolve('mapper', 'cloudtrial', '/')).toMatchObject({ reason: expect.stringContaining('did you mean cloudtrail?') });
    expect(await resolve('mapper', 'jsonl', '/')).toMatchObject({ reason: expect.stringContaining('(jsonl is a loader)') });
  });
});
