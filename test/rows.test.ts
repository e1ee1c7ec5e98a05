import { describe, expect, it } from 'vitest';
import { isoTime, positionId } from '../src/rows.js';

describe('isoTime', () => {
  it.each([
    ['2024-03-01T12:00:00Z', '2024-03-01T12:00:00.000Z'],
    ['2024-02-29T23:59:59Z', '2024-02-29T23:59:59.000Z'],
    ['2024-03-01T12:00:00.123Z', '2024-03-01T12:00:00.123Z'],
    ['2024-03-01T12:00:00+02:00', '2024-03-01T10:00:00.000Z'],
    [1709294400000, '2024-03-01T12:00:00.000Z'],
    [new Date(0), '1970-01-01T00:00:00.000Z'],
    ['2023-02-29T00:00:00Z', '2023-03-01T00:00:00.000Z'],
    ['2024-13-01T00:00:00Z', undefined],
    ['2024-03-01T25:00:00Z', undefined],
    ['not a time', undefined],
    ['', undefined],
    [null, undefined],
  ])('%j → %j', (input, expected) => {
    expect(isoTime(input)).toBe(expected);
  });
});

describe('positionId', () => {
  it('is stable, and differs by identity, position and sub-position', () => {
    const a = positionId('file:/a:1:1:x', 5);
    expect(a).toBe(positionId('file:/a:1:1:x', 5));
    expect(a).toHaveLength(22);
    expect(new Set([a, positionId('file:/a:1:1:y', 5), positionId('file:/a:1:1:x', 6), positionId('file:/a:1:1:x', 5, 1)]).size).toBe(4);
  });
});
