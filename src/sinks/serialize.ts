/**
 * Rows to JSON lines, grouped by partition. Runs in worker threads when the engine uses them, so
 * JSON.stringify (the single largest cost of a pipeline) is spread over every core.
 */
import type { Row, RowErrorRecord, RowSerializer, SerializedPart } from '../types.js';

export function partitionOf(row: Row, mode: RowSerializer['partition']): string {
  if (mode === 'none') return '';
  const t = typeof row._time === 'string' ? row._time : '';
  if (t.length < 13) return 'dt=unknown';
  return mode === 'day' ? `dt=${t.slice(0, 10)}` : `dt=${t.slice(0, 10)}/hour=${t.slice(11, 13)}`;
}

/**
 * Serializes rows; a row JSON.stringify cannot handle (a cycle, nesting deeper than the stack) is
 * returned as a row error instead of failing its artifact.
 */
export function serializeRows(rows: Row[], mode: RowSerializer['partition']): { parts: SerializedPart[]; errors: RowErrorRecord[] } {
  const parts = new Map<string, SerializedPart>();
  const errors: RowErrorRecord[] = [];
  for (const row of rows) {
    let json: string;
    try {
      json = JSON.stringify(row);
    } catch (err) {
      errors.push({
        artifact: '', uri: String(row._source ?? ''), position: {}, code: 'PIPE_ROW_INVALID',
        message: `row ${String(row._id ?? '')} cannot be written as JSON: ${(err as Error).message}`,
      });
      continue;
    }
    const partition = partitionOf(row, mode);
    let part = parts.get(partition);
    if (!part) {
      part = { partition, text: '', rows: 0 };
      parts.set(partition, part);
    }
    part.text += json + '\n';
    part.rows++;
  }
  return { parts: [...parts.values()], errors };
}
