/**
 * Collecting from a stream source (CloudWatch log groups, tailed files): the source hands over
 * decoded records with the cursor they bring their stream to; each chunk becomes one batch whose
 * `streams` entry the sink commits with its rows.
 */
import type { ArtifactMapper, Batch, ReadContext, RecordContext, StreamSource } from '../types.js';
import { BatchBuilder, emit, mapperChain, type CollectPlan } from './collect.js';

export async function collectStreams(
  source: StreamSource, ctx: ReadContext, plan: CollectPlan, push: (batch: Batch) => Promise<void>,
): Promise<void> {
  const chains = new Map<string, ArtifactMapper[]>();
  for await (const chunk of source.read(ctx)) {
    if (!chunk.cursor) {
      // A ref ended with nothing to commit (a tailed generation forgotten): only its mapper state goes.
      if (chunk.last) chains.delete(chunk.ref.identity);
      continue;
    }
    let chain = chains.get(chunk.ref.identity);
    if (!chain) {
      chain = mapperChain(plan, chunk.ref);
      chains.set(chunk.ref.identity, chain);
    }
    const out = new BatchBuilder(chunk.ref, plan.rowWriter?.());
    if (chunk.remember?.length) out.batch.remember = [...chunk.remember];
    const rc: RecordContext = {
      artifact: chunk.ref, seq: chunk.firstSeq,
      remember(namespace, key, expiresAt) {
        (out.batch.remember ??= []).push({ namespace, key, expiresAt });
      },
    };
    for (let i = 0; i < chunk.records.length; i++) {
      rc.seq = chunk.firstSeq + i;
      emit(chain, 0, chunk.records[i], rc, out);
    }
    for (const e of chunk.rowErrors ?? []) out.error(e.error, chunk.firstSeq + e.index);
    const batch = out.take(chunk.firstSeq + chunk.records.length, chunk.bytes ?? 0);
    batch.streams = { [chunk.cursor.stream]: chunk.cursor.value };
    if (chunk.last) chains.delete(chunk.ref.identity);
    await push(batch);
    if (ctx.signal.aborted) break;
  }
}
