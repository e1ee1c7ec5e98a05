/**
 * How far behind now each stream is, from what its stored position carries: a CloudWatch group's
 * pointer (the end of the last window read), the delivery time in an S3 mark's key (CloudTrail and
 * VPC Flow Logs file names carry one; other keys do not, and get no lag), and for a tail cursor the
 * time of its last commit (a followed file has no time of its own, so that is the best measure).
 */
import { keyTime } from '../sources/s3-layout.js';

export interface StreamLag {
  /** Milliseconds behind now; absent when the position carries no time. */
  lagMs?: number;
  /** What the lag is measured from. */
  lagFrom?: 'pointer' | 'mark key time' | 'last commit';
}

export function streamLag(stream: string, value: unknown, updatedAt: string, now: number): StreamLag {
  const v = (value ?? {}) as Record<string, unknown>;
  const since = (t: number): number => Math.max(0, now - t);
  if (stream.startsWith('cloudwatch:') && typeof v.pointer === 'number') return { lagMs: since(v.pointer), lagFrom: 'pointer' };
  if (stream.startsWith('s3://') && typeof v.after === 'string') {
    const t = keyTime(v.after);
    return t === undefined ? {} : { lagMs: since(t), lagFrom: 'mark key time' };
  }
  if (stream.startsWith('tail:')) {
    const t = Date.parse(updatedAt);
    return Number.isNaN(t) ? {} : { lagMs: since(t), lagFrom: 'last commit' };
  }
  return {};
}

/** `3m12s`, `2h05m`, `4d3h`, `0s`. */
export function formatLag(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}
