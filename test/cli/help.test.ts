/** Every command's --help reads like a man page: a description, every option, examples; exit 0. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HELP, type CommandName } from '../../src/commands/help.js';
import { buildProgram } from '../../src/cli.js';
import { collect, ROOT, runCli, spawnCli } from '../helpers/cli.js';

const COMMANDS = Object.keys(HELP) as CommandName[];

describe('pipe <command> --help', () => {
  it('covers every command the program has', () => {
    expect(buildProgram(() => {}).commands.map((c) => c.name()).sort()).toEqual([...COMMANDS].sort());
  });

  it.each(COMMANDS)('%s: description, every option, 2-3 examples, exit 0', async (name) => {
    const r = await runCli([name, '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: pipe ${name} `));
    // The description paragraph, re-wrapped by commander.
    expect(r.stdout.replace(/\s+/g, ' ')).toContain(HELP[name].description.replace(/\s+/g, ' ').slice(0, 60));
    const examples = r.stdout.split('\nExamples:\n')[1];
    expect(examples, 'an Examples section').toBeDefined();
    const lines = examples!.split('\n\n')[0]!.split('\n').filter((l) => l.startsWith('  pipe '));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.length).toBeLessThanOrEqual(3);
    const cmd = buildProgram(() => {}).commands.find((c) => c.name() === name)!;
    for (const o of cmd.options) {
      expect(r.stdout, o.flags).toContain(o.flags);
      expect(o.description.length, `${name} ${o.flags} has a description`).toBeGreaterThan(5);
    }
  });

  it('pipe --version prints the version package.json gives, which the changelog names last', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
    const changelog = readFileSync(join(ROOT, 'README.md'), 'utf8').split('## Changelog')[1] ?? '';
    const versions = [...changelog.matchAll(/^- (\d+\.\d+\.\d+):/gm)].map((m) => m[1]);
    expect(versions.at(-1)).toBe(pkg.version);
  });

  it('pipe --help points at the per-command help', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('pipe <command> --help');
  });

  it('a reader that stops early (pipe --help | head -1) is not an error', async () => {
    const child = spawnCli(['--help']);
    child.stdin!.end();
    child.stdout!.destroy();
    const r = await collect(child);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
