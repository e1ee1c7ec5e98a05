import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { prestartCount } from '../../src/engine/prestart.js';

describe('prestartCount: which command lines start decoding threads before the CLI loads', () => {
  const cores = availableParallelism();
  it.each<[string[], number]>([
    [['run', 'p.yml'], cores],
    [['backfill', 'p.yml', '--from', '7d'], cores],
    [['run', 'p.yml', '--threads', '3'], 3],
    [['run', 'p.yml', '--threads=1'], 1],
    [['run', 'p.yml', '--threads', '0'], 0],
    [['run', 'p.yml', '--threads', 'lots'], 0],
    [['run', 'p.yml', '--threads', '65'], 0],
    [['run', 'p.yml', '--dry-run'], 0],
    [['run', '--help'], 0],
    [['backfill', '-h'], 0],
    [['status', 'p.yml'], 0],
    [['tail', '/var/log/app'], 0],
    [['validate', 'p.yml'], 0],
    [[], 0],
  ])('%j → %i', (args, n) => {
    expect(prestartCount(args)).toBe(n);
  });
});
