// weekdayRange, dateRange and timeRange: the semantics of Mozilla's pac utilities as pacparser ships
// them, computed on broken-down clock fields instead of JS Date arithmetic. That removes the Date
// overflow quirks (Mozilla sets "Dec 31" then month FEB and lands on March 3) and lets the caller pin
// the clock and the time zone.

/** The clock, broken down in one time zone. month is 0-11, weekday 0 (SUN)-6. */
export interface ClockFields {
  year: number;
  month: number;
  day: number;
  weekday: number;
  hour: number;
  minute: number;
  second: number;
}

/** Which zone a range without "GMT" uses: an IANA name, or undefined for the process's local time. */
export function clockFields(now: Date, zone: 'GMT' | string | undefined): ClockFields {
  if (zone === 'GMT' || zone === 'UTC') {
    return {
      year: now.getUTCFullYear(), month: now.getUTCMonth(), day: now.getUTCDate(), weekday: now.getUTCDay(),
      hour: now.getUTCHours(), minute: now.getUTCMinutes(), second: now.getUTCSeconds(),
    };
  }
  if (zone === undefined) {
    return {
      year: now.getFullYear(), month: now.getMonth(), day: now.getDate(), weekday: now.getDay(),
      hour: now.getHours(), minute: now.getMinutes(), second: now.getSeconds(),
    };
  }
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
    weekday: 'short', hour: 'numeric', minute: 'numeric', second: 'numeric',
  }).formatToParts(now);
  const get = (type: Intl.DateTimeFormatPartTypes): string => parts.find((p) => p.type === type)?.value ?? '';
  return {
    year: Number(get('year')), month: Number(get('month')) - 1, day: Number(get('day')),
    weekday: WEEKDAYS.indexOf(get('weekday').toUpperCase()),
    hour: Number(get('hour')) % 24, minute: Number(get('minute')), second: Number(get('second')),
  };
}

/** True when `zone` is an IANA time zone name this Node knows. */
export function isKnownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];

/** A range argument as the script passed it (strings and numbers, like JS `arguments`). */
export type RangeArg = string | number;
/** Gives the clock in GMT or in the configured zone; the builtins ask for one or the other. */
export type ClockSource = (gmt: boolean) => ClockFields;

function splitGmt(args: readonly RangeArg[]): { args: readonly RangeArg[]; gmt: boolean } {
  const gmt = args.length > 0 && String(args[args.length - 1]) === 'GMT';
  return { args: gmt ? args.slice(0, -1) : args, gmt };
}

/** weekdayRange(wd1 [, wd2] [, "GMT"]): inclusive, wrapping (FRI..MON covers the weekend). */
export function weekdayRange(rawArgs: readonly RangeArg[], clock: ClockSource): boolean {
  const { args, gmt } = splitGmt(rawArgs);
  if (args.length < 1) return false;
  const today = clock(gmt).weekday;
  const first = WEEKDAYS.indexOf(String(args[0]));
  const last = args.length >= 2 ? WEEKDAYS.indexOf(String(args[1])) : first;
  if (first < 0 || last < 0) return false;
  return first <= last ? first <= today && today <= last : today >= first || today <= last;
}

type Tuple = [number, number, number, number, number, number];

function compare(a: Tuple, b: Tuple): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

function inRange(start: Tuple, end: Tuple, now: Tuple): boolean {
  return compare(start, end) <= 0
    ? compare(start, now) <= 0 && compare(now, end) <= 0
    : compare(end, now) >= 0 || compare(now, start) >= 0;
}

/** Applies one dateRange argument (a day 1-31, a month name or a year) to a tuple; false when invalid. */
function applyDatePart(target: Tuple, arg: RangeArg): 'day' | 'month' | 'year' | undefined {
  const n = parseInt(String(arg), 10);
  if (Number.isNaN(n)) {
    const month = MONTHS.indexOf(String(arg));
    if (month < 0) return undefined;
    target[1] = month;
    return 'month';
  }
  if (n < 32) {
    target[2] = n;
    return 'day';
  }
  target[0] = n;
  return 'year';
}

/**
 * dateRange(day | month | year, ... [, "GMT"]): one value tests equality; two, four or six values give
 * an inclusive (wrapping) range from the first half of the arguments to the second half, unspecified
 * fields defaulting to the start (Jan 1 00:00:00) and the end (Dec 31 23:59:59) of the current year.
 * Two days only (dateRange(1, 15)) means those days of the current month.
 */
export function dateRange(rawArgs: readonly RangeArg[], clock: ClockSource): boolean {
  const { args, gmt } = splitGmt(rawArgs);
  if (args.length < 1) return false;
  const c = clock(gmt);
  if (args.length === 1) {
    const n = parseInt(String(args[0]), 10);
    if (Number.isNaN(n)) return c.month === MONTHS.indexOf(String(args[0]));
    return n < 32 ? c.day === n : c.year === n;
  }
  const start: Tuple = [c.year, 0, 1, 0, 0, 0];
  const end: Tuple = [c.year, 11, 31, 23, 59, 59];
  const half = args.length >> 1;
  let daysOnly = false;
  for (let i = 0; i < half; i++) {
    const kind = applyDatePart(start, args[i]);
    if (kind === undefined) return false;
    if (kind === 'day') daysOnly = args.length <= 2;
  }
  for (let i = half; i < args.length; i++) {
    if (applyDatePart(end, args[i]) === undefined) return false;
  }
  if (daysOnly) {
    start[1] = c.month;
    end[1] = c.month;
  }
  return inRange(start, end, [c.year, c.month, c.day, c.hour, c.minute, c.second]);
}

/**
 * timeRange(hour | h1, h2 | h1, m1, h2, m2 | h1, m1, s1, h2, m2, s2 [, "GMT"]). As in pacparser,
 * two hours are inclusive of the whole last hour (timeRange(9, 17) is true at 17:30), and ranges
 * with minutes wrap past midnight. Other argument counts throw, as pacparser does.
 */
export function timeRange(rawArgs: readonly RangeArg[], clock: ClockSource): boolean {
  const { args, gmt } = splitGmt(rawArgs);
  if (args.length < 1) return false;
  const c = clock(gmt);
  const n = args.map((a) => Number(a));
  if (args.length === 1) return c.hour === n[0];
  if (args.length === 2) return n[0] <= c.hour && c.hour <= n[1];
  const now: Tuple = [0, 0, 0, c.hour, c.minute, c.second];
  if (args.length === 4) return inRange([0, 0, 0, n[0], n[1], 0], [0, 0, 0, n[2], n[3], 59], now);
  if (args.length === 6) return inRange([0, 0, 0, n[0], n[1], n[2]], [0, 0, 0, n[3], n[4], n[5]], now);
  throw new Error('timeRange: bad number of arguments');
}
