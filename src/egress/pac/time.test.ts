import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clockFields, dateRange, timeRange, weekdayRange, type ClockSource } from './time.js';

// Wednesday 2026-03-04 10:20:30 UTC; 11:20:30 in Europe/Paris (UTC+1 in March before DST).
const NOW = new Date('2026-03-04T10:20:30Z');
const clock: ClockSource = (gmt) => clockFields(NOW, gmt ? 'GMT' : 'Europe/Paris');

test('clockFields in GMT and in an IANA zone', () => {
  assert.deepEqual(clockFields(NOW, 'GMT'), { year: 2026, month: 2, day: 4, weekday: 3, hour: 10, minute: 20, second: 30 });
  assert.deepEqual(clockFields(NOW, 'Europe/Paris'), { year: 2026, month: 2, day: 4, weekday: 3, hour: 11, minute: 20, second: 30 });
  assert.deepEqual(clockFields(new Date('2026-03-04T23:30:00Z'), 'Asia/Tokyo'), { year: 2026, month: 2, day: 5, weekday: 4, hour: 8, minute: 30, second: 0 });
});

test('weekdayRange', () => {
  const cases: [string[], boolean][] = [
    [['WED'], true],
    [['TUE'], false],
    [['MON', 'FRI'], true],
    [['THU', 'FRI'], false],
    [['FRI', 'MON'], false],
    [['SAT', 'WED'], true],
    [['WED', 'GMT'], true],
    [['MON', 'TUE', 'GMT'], false],
    [['XYZ'], false],
    [['mon', 'fri'], false],
    [[], false],
  ];
  for (const [args, expected] of cases) assert.equal(weekdayRange(args, clock), expected, args.join(','));
});

test('dateRange', () => {
  const cases: [(string | number)[], boolean][] = [
    [[4], true],
    [[5], false],
    [['MAR'], true],
    [['APR'], false],
    [[2026], true],
    [[2025], false],
    [[1, 15], true],
    [[5, 31], false],
    [['JAN', 'MAR'], true],
    [['APR', 'DEC'], false],
    [['NOV', 'MAR'], true],
    [['JAN', 'FEB'], false],
    [[1, 'MAR', 4, 'MAR'], true],
    [[5, 'MAR', 31, 'DEC'], false],
    [['MAR', 2026, 'APR', 2026], true],
    [['JAN', 2025, 'FEB', 2026], false],
    [[1, 'JAN', 2026, 31, 'DEC', 2026], true],
    [[4, 'MAR', 'GMT'], true],
    [['4', 'GMT'], true],
    [['XYZ', 'DEC'], false],
    [[], false],
  ];
  for (const [args, expected] of cases) assert.equal(dateRange(args, clock), expected, args.join(','));
});

test('timeRange (local is Europe/Paris 11:20:30, GMT 10:20:30)', () => {
  const cases: [(string | number)[], boolean][] = [
    [[11], true],
    [[10], false],
    [[10, 'GMT'], true],
    [[9, 17], true],
    [[9, 11], true],
    [[12, 17], false],
    [[11, 0, 11, 20], true],
    [[11, 21, 12, 0], false],
    [[22, 0, 12, 0], true],
    [[22, 0, 11, 0], false],
    [[11, 20, 30, 11, 20, 30], true],
    [[11, 20, 31, 11, 21, 0], false],
    [['9', '17'], true],
    [[], false],
  ];
  for (const [args, expected] of cases) assert.equal(timeRange(args, clock), expected, args.join(','));
  assert.throws(() => timeRange([1, 2, 3], clock), /bad number of arguments/);
});
