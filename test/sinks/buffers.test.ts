import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChunkFileWriter } from '../../src/sinks/chunk.js';
import { BufferSource, serializeRows } from '../../src/sinks/serialize.js';
import { tempDir } from '../helpers/tmp.js';

const rows = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ _id: `${tag}${i}`, _time: '2024-03-01T00:00:00.000Z', _source: 'file:///x', n: i }));

describe('buffers given back by the sink', () => {
  it('are reused for the next batch, so steady work allocates none', () => {
    const buffers = new BufferSource();
    const first = serializeRows(rows(500, 'a'), 'none', buffers).parts[0]!;
    const used = (first.text as Uint8Array).buffer as ArrayBuffer;
    buffers.give(used);
    expect(buffers.size).toBe(1);
    const second = serializeRows(rows(500, 'b'), 'none', buffers).parts[0]!;
    expect((second.text as Uint8Array).buffer).toBe(used);
    expect(buffers.size).toBe(0);
    // The reused buffer holds exactly the second batch's lines.
    const lines = Buffer.from(second.text as Uint8Array).toString().trimEnd().split('\n');
    expect(lines).toHaveLength(500);
    expect(JSON.parse(lines[499]!)).toMatchObject({ _id: 'b499', n: 499 });
  });

  it('stay few and bounded in size', () => {
    const buffers = new BufferSource(2, 1024);
    buffers.give(new ArrayBuffer(2048));
    expect(buffers.size).toBe(0);
    for (let i = 0; i < 5; i++) buffers.give(new ArrayBuffer(512));
    expect(buffers.size).toBe(2);
    expect(buffers.take(600)).toBeUndefined();
    expect(buffers.take(100)?.length).toBe(512);
  });

  it('are released by a chunk file only once their bytes are written, and not by a failed write', async () => {
    const dir = tempDir();
    const released: string[] = [];
    const w = new ChunkFileWriter(join(dir, 'a.tmp'), join(dir, 'a.jsonl'), false);
    expect(w.append(Buffer.from('{"a":1}\n'), 1, () => released.push('one'))).toBe(false);
    w.append(Buffer.from('{"a":2}\n'), 1, () => released.push('two'));
    expect(released).toEqual([]);
    await w.writeOut();
    expect(released).toEqual(['one', 'two']);
    await w.seal();
    expect(readFileSync(join(dir, 'a.tmp'), 'utf8')).toBe('{"a":1}\n{"a":2}\n');

    const bad = new ChunkFileWriter(join(dir, 'missing', 'b.tmp'), join(dir, 'b.jsonl'), false);
    bad.append(Buffer.from('{"b":1}\n'), 1, () => released.push('bad'));
    await expect(bad.writeOut()).rejects.toThrow(/ENOENT/);
    expect(released).toEqual(['one', 'two']);
  });
});
