/** `pipe status`: what is done, what failed and why, where each stream stands, the last runs. */
import { existsSync } from 'node:fs';
import { formatPosition, PipeError, type Position } from '../errors.js';
import { formatBytes } from '../engine/progress.js';
import type { StatusReport } from '../state/store.js';
import { loadPipelines, statePath, Stores } from './common.js';

export async function statusReport(file: string, state: string | undefined): Promise<StatusReport & { state: string }> {
  const [cfg] = await loadPipelines([file]);
  const path = statePath(cfg, state);
  if (!existsSync(path)) {
    throw new PipeError('PIPE_STATE_CORRUPT', `no state file at ${path}: pipeline ${cfg!.name} has not run with this state yet (or the file was removed: the next run would collect everything again)`);
  }
  const stores = new Stores();
  try {
    return { state: path, ...(await stores.get(path).status(cfg!.name)) };
  } finally {
    await stores.closeAll();
  }
}

function pos(p: Position | undefined): string {
  const t = formatPosition(p);
  return t ? ` at ${t}` : '';
}

export function renderStatus(r: StatusReport & { state: string }): string {
  const a = r.artifacts;
  const lines = [
    `pipeline ${r.pipeline} (state ${r.state})`,
    `artifacts: ${a.done} done, ${a.failed} failed, ${a.inProgress} in progress, ${a.skipped} skipped`,
  ];
  if (r.lock) lines.push(`lock: held by pid ${r.lock.owner.pid} on ${r.lock.owner.host} (run ${r.lock.owner.runId}) until ${r.lock.expiresAt}`);
  if (r.failed.length) {
    lines.push('failed:');
    for (const f of r.failed) lines.push(`  ${f.uri}: ${f.errorCode ?? ''} ${f.errorMessage ?? ''}${pos(f.errorPosition)} (attempts ${f.attempts}, ${f.rows} rows delivered)`);
    lines.push('  retry with: pipe run --retry-failed <pipeline.yml>');
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
    for (const p of r.positions) lines.push(`  ${p.stream}: ${JSON.stringify(p.value)} (updated ${p.updatedAt})`);
  }
  if (r.runs.length) {
    lines.push('last runs:');
    for (const run of r.runs) {
      const dur = run.endedAt ? `${((Date.parse(run.endedAt) - Date.parse(run.startedAt)) / 1000).toFixed(1)}s` : 'not ended (running or killed)';
      const counts = run.endedAt ? `, ${run.artifacts} artifacts, ${run.rows} rows, ${formatBytes(run.bytes ?? 0)}, ${run.failed} failed, exit ${run.exitCode}` : '';
      lines.push(`  ${run.startedAt} ${run.command} ${run.runId}: ${dur}${counts}`);
    }
  }
  return lines.join('\n') + '\n';
}
