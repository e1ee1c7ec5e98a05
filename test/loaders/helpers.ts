import { RecordBatch } from '../../src/types.js';
/** Shared helpers for the loader tests: run stages the way the engine does (stream.pipeline). */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { ComponentContext, StreamStage } from '../../src/types.js';

export const fixture = (rel: string): Buffer => readFileSync(fileURLToPath(new URL(`../../fixtures/${rel}`, import.meta.url)));

/** Loaders ignore their context; a typed placeholder keeps `create` calls honest. */
export const ctx = {} as ComponentContext;

/** `buf` cut into chunks of `size` bytes (the last one shorter). */
export function chunksOf(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

export interface StageResult {
  items: unknown[];
  error: unknown;
}

type Input = Iterable<Buffer> | AsyncIterable<Buffer>;

/** Runs `input` through `stages` with stream.pipeline and collects what comes out, and the error. */
export async function run(stages: StreamStage[], input: Input, signal = new AbortController().signal): Promise<StageResult> {
  const items: unknown[] = [];
  let error: unknown;
  try {
    await (pipeline as unknown as (...s: unknown[]) => Promise<void>)(
      Readable.from(input),
      ...stages,
      async (source: AsyncIterable<unknown>) => {
        // A loader may yield several records at once; the engine takes them one by one, so do the tests.
        for await (const item of source) {
          if (item instanceof RecordBatch) items.push(...item.records);
          else items.push(item);
        }
      },
      { signal },
    );
  } catch (err) {
    error = err;
  }
  return { items, error };
}

/** The bytes out of a bytes stage, concatenated. */
export async function runBytes(stages: StreamStage[], input: Input): Promise<{ bytes: Buffer; error: unknown }> {
  const { items, error } = await run(stages, input);
  return { bytes: Buffer.concat(items as Buffer[]), error };
}
