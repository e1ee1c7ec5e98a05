import { describe, expect, it } from 'vitest';
import { formatDuration, formatSize, parseDuration, parseSize, parseTime } from '../../src/config/index.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['14d', 1_209_600_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1_500],
    [' 2m ', 120_000],
    ['0', 0],
    [250, 250],
  ] as const)('%j → %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(['soon', '', '60', '5 m', '-1s', '1w', '1h30', 's', true, null, -5, Number.NaN])('refuses %j', (input) => {
    expect(parseDuration(input)).toBeUndefined();
  });
});

describe('parseSize', () => {
  it.each([
    ['64KiB', 65_536],
    ['64MiB', 67_108_864],
    ['1GiB', 1_073_741_824],
    ['10KB', 10_000],
    ['2mb', 2_000_000],
    ['512', 512],
    ['512B', 512],
    ['1.5KiB', 1_536],
    [4096, 4096],
  ] as const)('%j → %d bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  it.each(['64M', '64 megs', 'KiB', '-1KiB', '', 1.5, -1, '1ZiB'])('refuses %j', (input) => {
    expect(parseSize(input)).toBeUndefined();
  });
});

describe('parseTime', () => {
  const now = new Date('2024-03-10T12:00:00.000Z');

  it.each([
    ['7d', '2024-03-03T12:00:00.000Z'],
    ['12h', '2024-03-10T00:00:00.000Z'],
    ['90m', '2024-03-10T10:30:00.000Z'],
    ['now', '2024-03-10T12:00:00.000Z'],
    ['2024-03-01', '2024-03-01T00:00:00.000Z'],
    ['2024-03-01T06:30', '2024-03-01T06:30:00.000Z'],
    ['2024-03-01 06:30:15', '2024-03-01T06:30:15.000Z'],
    ['2024-03-01T06:30:15.250Z', '2024-03-01T06:30:15.250Z'],
    ['2024-03-01T06:30:00+02:00', '2024-03-01T04:30:00.000Z'],
    ['2024-03-01T06:30:00-0130', '2024-03-01T08:00:00.000Z'],
  ])('%s → %s', (input, iso) => {
    expect(parseTime(input, now)?.toISOString()).toBe(iso);
  });

  it.each(['yesterday', '2024-02-30', '2024-13-01', '2024-03-01T25:00', '03/01/2024', 'March 1 2024', ''])('refuses %j', (input) => {
    expect(parseTime(input, now)).toBeUndefined();
  });
});

describe('formatting for users', () => {
  it('shows durations in the largest whole units', () => {
    expect([0, 500, 1_000, 90_000, 86_400_000 + 1_000].map(formatDuration)).toEqual(['0s', '500ms', '1s', '1m30s', '1d1s']);
  });

  it('shows sizes in whole IEC units, else bytes', () => {
    expect([67_108_864, 1_536, 1_024, 10_000].map(formatSize)).toEqual(['64MiB', '1536B', '1KiB', '10000B']);
  });
});
