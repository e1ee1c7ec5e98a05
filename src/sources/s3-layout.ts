/**
 * The key layouts AWS writes CloudTrail and VPC Flow Logs in, as pure functions:
 *
 *   [<custom prefix>/]AWSLogs/[o-<org id>/]<account>/<CloudTrail|vpcflowlogs>/<region>/YYYY/MM/DD/[HH/]<file>
 *
 * and the Hive-compatible prefixes VPC Flow Logs can be delivered with instead:
 *
 *   [<custom prefix>/]AWSLogs/aws-account-id=<account>/aws-service=vpcflowlogs/aws-region=<region>/year=YYYY/month=MM/day=DD/[hour=HH/]<file>
 *
 * `placePrefix` says which level of that tree the segment after a prefix is, so the source knows
 * what a delimiter listing under it discovers (organizations, accounts, regions) and where the
 * per-region listings start. A region prefix is a *leaf*: under it keys sort by date, so a time
 * window is a key range (`rangeStart`, `pastRange`) and a listing mark moves forward in time.
 */

export type Layout = 'cloudtrail' | 'vpcflow' | 'none';

/** The directory under an account that holds each layout's deliveries. */
export const SERVICE_DIR: Record<Exclude<Layout, 'none'>, string> = { cloudtrail: 'CloudTrail', vpcflow: 'vpcflowlogs' };

const HIVE_ACCOUNT = 'aws-account-id=';
const HIVE_REGION = 'aws-region=';

/**
 * The service directory under an account directory: `vpcflowlogs`, or `aws-service=vpcflowlogs`
 * under a Hive-compatible `aws-account-id=<account>/`.
 */
export function serviceDir(layout: Exclude<Layout, 'none'>, accountDir: string): string {
  return lastSegment(accountDir).startsWith(HIVE_ACCOUNT) ? `aws-service=${SERVICE_DIR[layout]}` : SERVICE_DIR[layout];
}

/** Whether keys under a region prefix are filed under `year=YYYY/month=MM/day=DD/` (Hive-compatible). */
function hive(region: string): boolean {
  return lastSegment(region).startsWith(HIVE_REGION);
}

/**
 * What the segment after `base` is: an organization or an account (`owner`), an account (under an
 * organization), the service directory, a region, or nothing more to discover (`leaf`).
 */
export type Level = 'owner' | 'account' | 'service' | 'region' | 'leaf';

export interface PrefixPlace {
  /** The prefix up to and including its last `/`. */
  base: string;
  /** The incomplete last segment ('' when the prefix ends with `/`): a filter on the next level. */
  partial: string;
  level: Level;
  /** For a leaf: the region prefix (`…/<region>/`) under which `YYYY/MM/DD/` follow. */
  region?: string;
}

/** A prefix of keys listed on its own, with its own listing mark. */
export interface Leaf {
  prefix: string;
  /** The region prefix whose dates the keys carry (layouts only). */
  region?: string;
}

const ROOT_DIR = 'AWSLogs';
const DAY_MS = 86_400_000;

/** Where `prefix` stands in the layout. A prefix without an `AWSLogs` segment is a custom prefix above it. */
export function placePrefix(prefix: string): PrefixPlace {
  const segments = prefix.split('/');
  let partial = segments.pop()!;
  let at = segments.lastIndexOf(ROOT_DIR);
  if (at < 0 && partial === ROOT_DIR) {
    segments.push(partial);
    partial = '';
    at = segments.length - 1;
  }
  if (at < 0) {
    // `my-trails` and `my-trails/` both name the custom prefix CloudTrail was configured with.
    const custom = prefix === '' ? '' : prefix.endsWith('/') ? prefix : `${prefix}/`;
    return { base: `${custom}${ROOT_DIR}/`, partial: '', level: 'owner' };
  }
  const base = segments.length ? `${segments.join('/')}/` : '';
  const rest = segments.slice(at + 1);
  const org = rest[0]?.startsWith('o-') ? 1 : 0;
  const known = rest.length - org;
  if (known <= 0) return { base, partial, level: org ? 'account' : 'owner' };
  if (known === 1) return { base, partial, level: 'service' };
  if (known === 2) return { base, partial, level: 'region' };
  const region = `${segments.slice(0, at + 1 + org + 3).join('/')}/`;
  return { base, partial, level: 'leaf', region };
}

/** The last segment of a directory prefix: `AWSLogs/o-abc/` → `o-abc`. */
export function lastSegment(dir: string): string {
  const s = dir.endsWith('/') ? dir.slice(0, -1) : dir;
  return s.slice(s.lastIndexOf('/') + 1);
}

/**
 * The prefix a listing covers: the source's `prefix` narrowed by `--prefix` (a key prefix in the
 * bucket, as the S3 console shows it). A `--prefix` outside the source's prefix is refused.
 */
export function narrowPrefix(configured: string, scoped: string | undefined): string | undefined {
  if (scoped === undefined || scoped === '') return configured;
  if (scoped.startsWith(configured)) return scoped;
  if (configured.startsWith(scoped)) return configured;
  return undefined;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `2024/03/01` for a time's UTC day, or `year=2024/month=03/day=01` under a Hive-compatible region. */
export function dayPath(t: Date, region = ''): string {
  const [y, m, d] = [t.getUTCFullYear(), pad(t.getUTCMonth() + 1), pad(t.getUTCDate())];
  return hive(region) ? `year=${y}/month=${m}/day=${d}` : `${y}/${m}/${d}`;
}

/**
 * The UTC day a key under `region` is filed under (`…/<region>/2024/03/01/…`, or
 * `…/aws-region=<region>/year=2024/month=03/day=01/…`), as its start in epoch ms.
 */
export function keyDay(key: string, region: string): number | undefined {
  const rest = key.slice(region.length);
  const m = hive(region) ? /^year=(\d{4})\/month=(\d{2})\/day=(\d{2})\//.exec(rest) : /^(\d{4})\/(\d{2})\/(\d{2})\//.exec(rest);
  if (!m) return undefined;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Number.isNaN(t) ? undefined : t;
}

/**
 * The delivery time in a CloudTrail or VPC Flow Logs file name
 * (`123456789012_CloudTrail_us-east-1_20240301T0005Z_abc.json.gz`), in epoch ms.
 */
export function keyTime(key: string): number | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const m = /_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z(?:_|\.|$)/.exec(name);
  if (!m) return undefined;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
  return Number.isNaN(t) ? undefined : t;
}

/**
 * Whether a key under `region` belongs to [from, to): by the time in its file name, else by the day
 * it is filed under (any overlap). A key with neither is out of every window.
 */
export function keyInRange(key: string, region: string, from: Date | undefined, to: Date | undefined): boolean {
  const time = keyTime(key);
  if (time !== undefined) return (!from || time >= from.getTime()) && (!to || time < to.getTime());
  const day = keyDay(key, region);
  if (day === undefined) return false;
  return (!from || day + DAY_MS > from.getTime()) && (!to || day < to.getTime());
}

/** StartAfter for a window opening at `from`: every key of `from`'s day sorts after it. */
export function rangeStart(region: string, from: Date): string {
  return `${region}${dayPath(from, region)}`;
}

/** Whether a key lies past the last day of a window closing at `to` (exclusive): the listing can stop. */
export function pastRange(key: string, region: string, to: Date): boolean {
  const day = keyDay(key, region);
  if (day === undefined) return key.slice(region.length) > dayPath(new Date(to.getTime() - 1), region);
  return day > to.getTime() - 1;
}
