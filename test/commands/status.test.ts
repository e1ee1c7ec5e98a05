/** `pipe status`: lag per stream from what each kind of position carries, skipped reasons, --json. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatLag, streamLag } from '../../src/commands/status-lag.js';
import { renderStatus, type PipelineStatus } from '../../src/commands/status.js';
import { SqliteStore } from '../../src/state/sqlite.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const NOW = Date.parse('2024-03-01T01:00:00Z');

describe('streamLag', () => {
  it.each([
    ['cloudwatch:/app', { pointer: NOW - 192_000, covered: [] }, { lagMs: 192_000, lagFrom: 'pointer' }],
    ['s3://b/AWSLogs/1/CloudTrail/us-east-1/', { after: 'AWSLogs/1/CloudTrail/us-east-1/2024/03/01/1_CloudTrail_us-east-1_20240301T0005Z_a.json.gz' }, { lagMs: 55 * 60_000, lagFrom: 'mark key time' }],
    ['s3://b/logs/', { after: 'logs/app.log' }, {}],
    ['tail:abc', { path: '/x.log', offset: 5 }, { lagMs: 30_000, lagFrom: 'last commit' }],
    ['tail', { files: [] }, {}],
    ['cloudwatch:/new', { covered: [] }, {}],
  ])('%s', (stream, value, want) => {
    expect(streamLag(stream, value, new Date(NOW - 30_000).toISOString(), NOW)).toEqual(want);
  });

  it.each([[0, '0s'], [59_999, '59s'], [192_000, '3m12s'], [2 * 3600_000 + 5 * 60_000, '2h05m'], [100 * 3600_000, '4d4h']])('formats %i ms as %s', (ms, text) => {
    expect(formatLag(ms)).toBe(text);
  });
});

describe('renderStatus', () => {
  it('shows lag, skipped reasons and each run with its duration and counts', () => {
    const report: PipelineStatus = {
      pipeline: 'p', state: '/s.db', at: new Date(NOW).toISOString(),
      artifacts: { done: 1, failed: 1, inProgress: 0, skipped: 1 },
      failed: [{ identity: 'f', uri: 's3://b/bad.gz', status: 'failed', position: 3, rows: 3, rowErrors: 0, attempts: 2, errorCode: 'PIPE_ARTIFACT_CORRUPT', errorMessage: 'gzip: unexpected end of file', errorPosition: { byte: 812 }, updatedAt: '' }],
      skipped: [{ identity: 's', uri: 's3://b/digest.gz', status: 'skipped', position: 0, rows: 0, rowErrors: 0, attempts: 1, errorMessage: 'a CloudTrail digest file', updatedAt: '' }],
      inProgress: [], rowErrors: [],
      positions: [{ stream: 'cloudwatch:/app', value: { pointer: NOW - 192_000, pointerTime: new Date(NOW - 192_000).toISOString(), covered: [] }, updatedAt: '2024-03-01T00:59:00.000Z', lagMs: 192_000, lagFrom: 'pointer' }],
      runs: [{ runId: 'r1', command: 'run', pid: 1, startedAt: '2024-03-01T00:00:00.000Z', endedAt: '2024-03-01T00:00:02.500Z', artifacts: 3, failed: 1, rows: 10, rowErrors: 0, skipped: 1, bytes: 2048, exitCode: 1 }],
    };
    const text = renderStatus(report);
    expect(text).toContain('s3://b/bad.gz: PIPE_ARTIFACT_CORRUPT gzip: unexpected end of file at byte 812 (attempts 2, 3 rows delivered)');
    expect(text).toContain('skipped:\n  s3://b/digest.gz: a CloudTrail digest file');
    expect(text).toContain('cloudwatch:/app: pointer 2024-03-01T00:56:48.000Z (lag 3m12s (from pointer), updated');
    expect(text).toMatch(/r1: 2\.5s, 3 artifacts, 10 rows, .*1 failed, 1 skipped, exit 1/);
  });
});

describe('pipe status (CLI)', () => {
  it('lists skipped artifacts with their reasons, and each tail cursor with its lag, as text and --json', async () => {
    const dir = tempDir();
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    writeFileSync(join(logs, 'a.log'), 'one\ntwo\n');
    const tail = join(dir, 'tail.yml');
    writeFileSync(tail, `name: t\nstate: ${join(dir, 's.db')}\nsource:\n  type: tail\n  path: ${logs}\n  startAt: beginning\nsink:\n  type: jsonl\n  dir: ${join(dir, 'out-t')}\n`);
    const r = await runCli(['run', tail, '--once', '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    // A skipped artifact as a source records one (a file that vanished after it was listed).
    const store = new SqliteStore(join(dir, 's.db'), 'h');
    await store.skipArtifact('t', { identity: 'gone', uri: 'file:///gone.log' }, 'PIPE_ARTIFACT_NOT_FOUND: deleted since it was listed');
    await store.close();
    const text = await runCli(['status', tail]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`tail:\\S+: ${join(logs, 'a.log').replace(/[.]/g, '\\.')} offset 8, line 2 \\(lag \\d+s \\(from last commit\\)`));
    const json = JSON.parse((await runCli(['status', tail, '--json'])).stdout) as PipelineStatus;
    const cursor = json.positions.find((p) => p.stream.startsWith('tail:'))!;
    expect(cursor).toMatchObject({ lagFrom: 'last commit' });
    expect(cursor.lagMs).toBeGreaterThanOrEqual(0);
    expect(text.stdout).toContain('skipped:\n  file:///gone.log: PIPE_ARTIFACT_NOT_FOUND: deleted since it was listed');
    expect(json.skipped.map((a) => [a.uri, a.errorMessage])).toEqual([['file:///gone.log', 'PIPE_ARTIFACT_NOT_FOUND: deleted since it was listed']]);
    expect(json.runs[0]).toMatchObject({ command: 'run', exitCode: 0, rows: 2 });
    expect(json.at).toMatch(/Z$/);
  });
});
