import { describe, expect, it } from 'vitest';
import { PipeError } from '../../src/errors.js';
import { ChunkReader, toBuffer } from '../../src/loaders/chunks.js';

describe('toBuffer', () => {
  it('keeps Buffers, wraps other byte arrays without copying, encodes strings as UTF-8', () => {
    const b = Buffer.from('abc');
    expect(toBuffer(b)).toBe(b);
    const u = new Uint8Array([1, 2, 3, 4]).subarray(1, 3);
    const wrapped = toBuffer(u);
    expect([...wrapped]).toEqual([2, 3]);
    expect(wrapped.buffer).toBe(u.buffer);
    expect(toBuffer('é').equals(Buffer.from([0xc3, 0xa9]))).toBe(true);
  });

  it('anything else is a wiring bug: PIPE_INTERNAL', () => {
    expect(() => toBuffer({ line: 'x' })).toThrow(PipeError);
    expect(() => toBuffer(42)).toThrow(/a bytes stage received number instead of bytes/);
  });
});

describe('ChunkReader', () => {
  it('skips empty chunks, peeks without consuming, and closes the source early', async () => {
    let closed = false;
    async function* source(): AsyncGenerator<unknown> {
      try {
        yield Buffer.alloc(0);
        yield 'ab';
        yield Buffer.from('cd');
        yield Buffer.from('ef');
      } finally {
        closed = true;
      }
    }
    const reader = new ChunkReader(source());
    expect((await reader.peek(3)).toString()).toBe('abcd');
    expect((await reader.read())?.toString()).toBe('abcd');
    await reader.close();
    expect(closed).toBe(true);
    expect(await reader.read()).toBeNull();
  });
});
