/**
 * Durations, sizes and times as users write them in pipeline YAML and on the command line.
 * Every parser returns `undefined` for input it does not accept, so the caller (config
 * validation, the CLI) words the problem with the YAML path or flag it came from.
 */

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * A duration in milliseconds: `500ms`, `30s`, `5m`, `1h`, `14d`, compounds such as `1h30m`, and
 * decimals (`1.5s`). A number is taken as milliseconds already (spec defaults, programmatic use).
 * A unitless string other than `0` is refused: `poll: "60"` could mean seconds or milliseconds.
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (text === '0') return 0;
  const part = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)/y;
  let total = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const m = part.exec(text);
    if (!m) return undefined;
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    at = part.lastIndex;
  }
  return at === 0 ? undefined : Math.round(total);
}

/**
 * Sizes in bytes. IEC units are powers of 1024 (`KiB`, `MiB`, `GiB`, `TiB`) and SI units powers
 * of 1000 (`KB`, `MB`, `GB`, `TB`), as on disks and in Vector; unit letters are case-insensitive.
 * A bare number (or `B`) is bytes. Single letters (`64M`) are refused because tools disagree on
 * whether they mean 1000 or 1024.
 */
const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$/i.exec(value.trim());
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * A point in time for `--from`/`--to`: ISO 8601 (`2024-03-01`, `2024-03-01T12:00:00Z`, with an
 * offset, or a space instead of `T`), `now`, or a duration meaning that long before `now`
 * (`7d`, `12h`, `90m`). A date or time without an offset is UTC: log timestamps are UTC, and a
 * backfill range must not shift with the machine's time zone.
 */
export function parseTime(value: string, now: Date = new Date()): Date | undefined {
  const text = value.trim();
  if (text.toLowerCase() === 'now') return new Date(now.getTime());
  const ago = parseDuration(text);
  if (ago !== undefined) return new Date(now.getTime() - ago);
  const m = ISO_8601.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const fields = [y, mo, d, h, mi, s].map(Number) as [number, number, number, number, number, number];
  // Date.parse rolls 2024-02-30 over into March; a typo in a date must not silently move it.
  const check = new Date(Date.UTC(fields[0], fields[1] - 1, fields[2], fields[3], fields[4], fields[5]));
  const back = [check.getUTCFullYear(), check.getUTCMonth() + 1, check.getUTCDate(), check.getUTCHours(), check.getUTCMinutes(), check.getUTCSeconds()];
  if (back.some((v, i) => v !== fields[i])) return undefined;
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${frac}${zone.toUpperCase()}`);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/** `90000` → `1m30s`: how durations are shown back to users (`pipe list`, problems). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = Math.round(ms);
  let out = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms']) {
    const size = DURATION_UNITS[unit]!;
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}

/** `67108864` → `64MiB`; sizes that are not whole IEC units are shown in bytes. */
export function formatSize(bytes: number): string {
  for (const unit of ['TiB', 'GiB', 'MiB', 'KiB']) {
    const size = SIZE_UNITS[unit.toLowerCase()]!;
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
