/** The pipeline `pipe tail` builds from its flags, without running it. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tailPipeline, tailPipelineName } from '../../src/commands/tail.js';
import { PipeError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';

describe('pipe tail: the pipeline it runs', () => {
  it('a tail source over the directory, the mappers, jsonl into --out or stdout', async () => {
    const dir = tempDir();
    const cfg = await tailPipeline(dir, { include: ['*.log'], mapper: ['vpcflow'], out: join(dir, 'out'), startAt: 'end', logFormat: 'text' });
    expect(cfg.name).toBe(tailPipelineName(dir));
    expect(cfg.source.options).toMatchObject({ path: dir, include: ['*.log'], exclude: [], startAt: 'end', rotateWait: 5000, partialLineTimeout: 5000 });
    expect(cfg.mappers.map((m) => m.type)).toEqual(['vpcflow']);
    expect(cfg.sink).toMatchObject({ type: 'jsonl', options: { dir: join(dir, 'out'), flushInterval: 1000 } });
    expect((await tailPipeline(dir, { logFormat: 'text' })).sink.type).toBe('stdout');
  });

  it('names the pipeline after the directory: stable for one, distinct for two with the same name', () => {
    const a = tempDir();
    const b = tempDir();
    mkdirSync(join(a, 'app'));
    mkdirSync(join(b, 'app'));
    expect(tailPipelineName(join(a, 'app'))).toMatch(/^tail-app-[0-9a-f]{8}$/);
    expect(tailPipelineName(join(a, 'app'))).toBe(tailPipelineName(join(a, 'app/')));
    expect(tailPipelineName(join(a, 'app'))).not.toBe(tailPipelineName(join(b, 'app')));
    expect(tailPipelineName('/')).toMatch(/^tail-root-/);
  });

  it.each([
    [{ dir: 'missing' }, 'not a directory'],
    [{ mapper: ['cloudtrial'] }, "unknown mapper type 'cloudtrial' (did you mean cloudtrail?)"],
    [{ mapper: ['jsonl'] }, '(jsonl is a loader)'],
    [{ mapper: ['filter'] }, '--mapper filter.where: required'],
  ])('refuses %o as a usage error', async (flags, message) => {
    const dir = tempDir();
    const err = await tailPipeline('dir' in flags ? join(dir, flags.dir) : dir, { logFormat: 'text', ...('mapper' in flags ? { mapper: flags.mapper } : {}) })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipeError);
    expect((err as PipeError).code).toBe('PIPE_USAGE');
    expect((err as PipeError).message).toContain(message);
  });
});
