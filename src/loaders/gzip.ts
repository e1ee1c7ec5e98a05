/**
 * The explicit `gzip` loader. Auto-detection already decompresses gzip, so listing `gzip` is a
 * promise about the content: when a pipeline lists it, the engine adds no auto-detection and
 * content that is not gzip fails the artifact (PIPE_ARTIFACT_CORRUPT) instead of passing through.
 * An empty artifact (a zero-byte object) yields no bytes rather than failing: it holds no data
 * to lose, and the records loader after it decides whether emptiness is an error.
 */
import type { ComponentContext, Loader, StreamStage } from '../types.js';
import type { ComponentSpec } from '../spec.js';
import { ChunkReader } from './chunks.js';
import { gunzipMembers } from './gzip-decoder.js';

export const spec: ComponentSpec = {
  parallel: true,
  kind: 'loader',
  type: 'gzip',
  summary: 'Decompresses gzip content (any number of members); content that is not gzip fails the artifact.',
  options: {},
};

export function gzipStage(): StreamStage {
  return async function* gzipLoaderStage(source: AsyncIterable<unknown>, { signal }: { signal: AbortSignal }) {
    const reader = new ChunkReader(source);
    try {
      yield* gunzipMembers(reader, signal);
    } finally {
      await reader.close();
    }
  };
}

export function create(_options: Record<string, unknown>, _ctx: ComponentContext): Loader {
  return { output: 'bytes', stage: () => gzipStage() };
}
