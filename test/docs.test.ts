/** Documentation that cannot drift: the README's component reference, its Quick start, the example pipelines. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { withComponentReference } from '../src/commands/list.js';
import { validatePipelineFile } from '../src/config/load.js';
import { makeResolver } from '../src/config/resolve.js';
import { builtins } from '../src/registry.js';
import { ROOT } from './helpers/cli.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

describe('README', () => {
  it('has a component reference generated from the current specs (npm run readme)', () => {
    expect(withComponentReference(readme)).toBe(readme);
    for (const kind of Object.values(builtins)) for (const type of Object.keys(kind)) expect(readme).toContain(`#### \`${type}\``);
  });

  it('opens with a Quick start of exactly: npm ci, the demo, npm test', () => {
    const block = /## Quick start\s+```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const commands = block.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
    expect(commands).toEqual(['npm ci', 'npm run demo', 'npm test']);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.demo).toContain('pipelines/local-cloudtrail.yml');
  });
});

describe('example pipelines', () => {
  // Every ${VAR} is given a value, as a user would export them.
  const env = new Proxy({}, { get: (_t, key) => (typeof key === 'string' ? `test-${key.toLowerCase()}` : undefined) }) as NodeJS.ProcessEnv;
  const files = readdirSync(join(ROOT, 'pipelines')).filter((f) => f.endsWith('.yml'));

  it.each(files)('%s validates', async (file) => {
    const v = await validatePipelineFile(join(ROOT, 'pipelines', file), { env, resolve: makeResolver(builtins) });
    expect(v.problems).toEqual([]);
    expect(v.config?.name).toMatch(/\w/);
  });
});
