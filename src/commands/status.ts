/** `pipe status`: what is done, what failed and why, where each stream stands and how far behind, the last runs. */
import { existsSync } from 'node:fs';
import { formatPosition, PipeError, type Position } from '../errors.js';
import { formatBytes } from '../engine/progress.js';
import type { StatusReport } from '../state/store.js';
import { isStateUrl, loadPipelines, statePath, Stores } from './common.js';
import { formatLag, streamLag, type StreamLag } from './status-lag.js';

export type StreamStatus = StatusReport['positions'][number] & StreamLag;

/** What `pipe status` shows, and `--json` prints as it is. */
export interface PipelineStatus extends Omit<StatusReport, 'positions'> {
  state: string;
  /** When the report was made: lags are measured to this instant. */
  at: string;
  positions: StreamStatus[];
}

export async function statusReport(file: string, state: string | undefined, now = Date.now()): Promise<PipelineStatus> {
  const [cfg] = await loadPipelines([file]);
  const path = statePath(cfg, state);
  if (!isStateUrl(path) && !existsSync(path)) {
    throw new PipeError('PIPE_STATE_CORRUPT', `no state file at ${path}: pipeline ${cfg!.name} has not run with this state yet (or the file was removed: the next run would collect everything again)`);
  }
  const stores = new Stores();
  try {
    const store = stores.get(path);
    const r = await store.status(cfg!.name);
    const positions = r.positions.map((p) => ({ ...p, ...streamLag(p.stream, p.value, p.updatedAt, now) }));
    // The store's own name for itself: a PostgreSQL URL with its password hidden.
    return { ...r, state: store.location, at: new Date(now).toISOString(), positions };
  } finally {
    await stores.closeAll();
  }
}

function pos(p: Position | undefined): string {
  const t = formatPosition(p);
  return t ? ` at ${t}` : '';
}

/** A position in a line: the part a person acts on, not the stored JSON. */
function describePosition(p: StreamStatus): string {
  const v = (p.value ?? {}) as Record<string, unknown>;
  if (p.stream.startsWith('cloudwatch:') && typeof v.pointerTime === 'string') return `pointer ${v.pointerTime}`;
  if (p.stream.startsWith('s3://') && typeof v.after === 'string') return `after ${v.after}`;
  if (p.stream.startsWith('tail:') && typeof v.path === 'string') return `${v.path} offset ${String(v.offset)}, line ${String(v.line)}${v.done ? ' (done)' : ''}`;
  const text = JSON.stringify(p.value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

export function renderStatus(r: PipelineStatus): string {
  const a = r.artifacts;
  const lines = [
    `pipeline ${r.pipeline} (state ${r.state})`,
    `artifacts: ${a.done} done, ${a.failed} failed, ${a.inProgress} in progress, ${a.skipped} skipped`,
  ];
  if (r.lock) lines.push(`lock: held by pid ${r.lock.owner.pid} on ${r.lock.owner.host} (run ${r.lock.owner.runId}) until ${r.lock.expiresAt}`);
  if (r.workers) {
    lines.push(`workers: ${r.workers.length} live`);
    for (const w of r.workers) {
      const held = w.claims.length ? `holds ${w.claims.length > 5 ? `${w.claims.slice(0, 5).join(', ')} and ${w.claims.length - 5} more` : w.claims.join(', ')}` : 'holds nothing';
      lines.push(`  pid ${w.owner.pid} on ${w.owner.host} (run ${w.owner.runId}): heartbeat ${w.heartbeatAt}, lease until ${w.expiresAt}, ${held}`);
    }
  }
  if (r.failed.length) {
    lines.push('failed:');
    for (const f of r.failed) lines.push(`  ${f.uri}: ${f.errorCode ?? ''} ${f.errorMessage ?? ''}${pos(f.errorPosition)} (attempts ${f.attempts}, ${f.rows} rows delivered)`);
    lines.push('  retry with: pipe run --retry-failed <pipeline.yml>');
  }
  if (r.skipped.length) {
    lines.push('skipped:');
    for (const f of r.skipped) lines.push(`  ${f.uri}: ${f.errorMessage ?? 'no reason recorded'}`);
  }
  if (r.inProgress.length) {
    lines.push('in progress:');
    for (const f of r.inProgress) lines.push(`  ${f.uri}: ${f.position} records committed`);
  }
  if (r.rowErrors.length) {
    lines.push('recent row errors:');
    for (const e of r.rowErrors) lines.push(`  ${e.uri}${pos(e.position)}: ${e.code} ${e.message}`);
  }
  if (r.positions.length) {
    lines.push('stream positions:');
    for (const p of r.positions) {
      const lag = p.lagMs !== undefined ? `lag ${formatLag(p.lagMs)} (from ${p.lagFrom}), ` : '';
      lines.push(`  ${p.stream}: ${describePosition(p)} (${lag}updated ${p.updatedAt})`);
    }
  }
  if (r.runs.length) {
    lines.push('last runs:');
    for (const run of r.runs) {
      const dur = run.endedAt ? `${((Date.parse(run.endedAt) - Date.parse(run.startedAt)) / 1000).toFixed(1)}s` : 'not ended (running or killed)';
      const counts = run.endedAt ? `, ${run.artifacts} artifacts, ${run.rows} rows, ${formatBytes(run.bytes ?? 0)}, ${run.failed} failed, ${run.skipped ?? 0} skipped, exit ${run.exitCode}` : '';
      lines.push(`  ${run.startedAt} ${run.command} ${run.runId}: ${dur}${counts}`);
    }
  }
  return lines.join('\n') + '\n';
}
