/**
 * Decompression detected from magic bytes, which the engine puts in front of every artifact
 * (unless the pipeline lists `gzip` itself). The file name is never consulted: S3 objects are
 * often served without a `.gz` suffix, and `.gz` names sometimes hold plain text.
 *
 * Only gzip is decoded. zstd, bzip2 and xz are recognised so that such an artifact fails with a
 * clear reason instead of being read as text; a decoder slots into `DECODERS` when one exists
 * (Node 20's zlib has neither zstd nor bzip2).
 */
import { PipeError } from '../errors.js';
import type { StreamStage } from '../types.js';
import { ChunkReader } from './chunks.js';
import { gunzipMembers, isGzipMagic } from './gzip-decoder.js';

export type Compression = 'gzip' | 'zstd' | 'bzip2' | 'xz';

/** Bytes needed to recognise every known format (bzip2's block magic ends at byte 10). */
export const SNIFF_BYTES = 10;

const startsWith = (head: Buffer, magic: readonly number[], at = 0): boolean =>
  head.length >= at + magic.length && magic.every((byte, i) => head[at + i] === byte);

/** The compression the first bytes of an artifact announce, or null for anything else. */
export function detectCompression(head: Buffer): Compression | null {
  if (isGzipMagic(head)) return 'gzip';
  if (startsWith(head, [0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  if (startsWith(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  // "BZh" + block size digit + the block magic (pi) or the end-of-stream magic (sqrt pi) of an empty file.
  const bzh = startsWith(head, [0x42, 0x5a, 0x68]) && head[3]! >= 0x31 && head[3]! <= 0x39;
  if (bzh && (startsWith(head, [0x31, 0x41, 0x59, 0x26, 0x53, 0x59], 4) || startsWith(head, [0x17, 0x72, 0x45, 0x38, 0x50, 0x90], 4))) {
    return 'bzip2';
  }
  return null;
}

type Decoder = (reader: ChunkReader, signal: AbortSignal) => AsyncGenerator<Buffer, void, undefined>;
const DECODERS: Partial<Record<Compression, Decoder>> = { gzip: gunzipMembers };

/**
 * The stage the engine runs on every artifact's raw bytes: decompresses what it recognises and
 * passes anything else through untouched (same bytes, possibly re-chunked).
 */
export function autoDecompress(): StreamStage {
  return async function* autoDecompressStage(source: AsyncIterable<unknown>, { signal }: { signal: AbortSignal }) {
    const reader = new ChunkReader(source);
    try {
      const format = detectCompression(await reader.peek(SNIFF_BYTES));
      if (format === null) {
        for (let chunk = await reader.read(); chunk; chunk = await reader.read()) {
          signal.throwIfAborted();
          yield chunk;
        }
        return;
      }
      const decode = DECODERS[format];
      if (!decode) {
        throw new PipeError('PIPE_ARTIFACT_UNREADABLE', `${format}-compressed content is not supported (recognised by its magic bytes)`, {
          position: { byte: 0 },
        });
      }
      yield* decode(reader, signal);
    } finally {
      await reader.close();
    }
  };
}
