import { describe, expect, it } from 'vitest';
import type { ComponentModule } from '../../src/spec.js';
import * as cloudtrail from '../../src/mappers/cloudtrail.js';
import * as vpcflow from '../../src/mappers/vpcflow.js';
import * as filter from '../../src/mappers/filter.js';
import * as set from '../../src/mappers/set.js';
import * as rename from '../../src/mappers/rename.js';
import * as drop from '../../src/mappers/drop.js';
import * as dedupe from '../../src/mappers/dedupe.js';
import { fakeContext } from './helpers.js';

const modules: Record<string, ComponentModule> = { cloudtrail, vpcflow, filter, set, rename, drop, dedupe };

const exampleType: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  boolean: (v) => typeof v === 'boolean',
  object: (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  strings: (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'),
  duration: (v) => typeof v === 'string' && /^\d+(ms|s|m|h|d)$/.test(v),
};

describe('mapper specs', () => {
  it.each(Object.entries(modules))('%s documents every option', (name, mod) => {
    expect(mod.spec.kind).toBe('mapper');
    expect(mod.spec.type).toBe(name);
    expect(mod.spec.summary).toMatch(/^[A-Z].{10,}\.$/);
    expect(['records', 'rows']).toContain(mod.spec.consumes);
    expect(mod.spec.defaultLoader !== undefined).toBe(mod.spec.consumes === 'records');
    for (const [key, o] of Object.entries(mod.spec.options)) {
      expect(o.description.length, `${name}.${key}`).toBeGreaterThan(20);
      expect(exampleType[o.type]!(o.example), `${name}.${key} example`).toBe(true);
      // An option is either required or has a default, so `pipe list` can always say what applies.
      expect(o.required === true, `${name}.${key}`).toBe(o.default === undefined);
    }
  });

  it.each(Object.entries(modules))('%s builds a mapper from its defaults and examples', async (name, mod) => {
    const options: Record<string, unknown> = {};
    for (const [key, o] of Object.entries(mod.spec.options)) options[key] = o.type === 'duration' ? 3_600_000 : (o.example ?? o.default);
    const store = { rememberedKeys: async () => new Map<string, number>() };
    const m = (await mod.create(options, fakeContext(store))) as { forArtifact: unknown };
    expect(typeof m.forArtifact, name).toBe('function');
  });
});
