/**
 * The kernel's parsers for sysfs stores, as their callers map failures: a sysfs store receives
 * the raw buffer, usually with echo's trailing newline.
 */

/** kstrtoul/kstrtou16 with base 0 ("0x10", "010", "16"), one trailing newline allowed. */
export function kstrtoul(value: string, max = Number.MAX_SAFE_INTEGER): number | null {
  const text = value.endsWith('\n') ? value.slice(0, -1) : value;
  const m = /^\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) return null;
  const digits = m[1]!;
  const n = /^0[xX]/.test(digits) ? Number.parseInt(digits.slice(2), 16) : digits.startsWith('0') ? Number.parseInt(digits, 8) : Number(digits);
  return Number.isSafeInteger(n) && n <= max ? n : null;
}

/** kstrtobool: 1/0, y/n, on/off (first characters decide, as in the kernel). */
export function kstrtobool(value: string): boolean | null {
  const text = value.toLowerCase();
  if (/^(1|y)/.test(text) || text.startsWith('on')) return true;
  if (/^(0|n)/.test(text) || text.startsWith('of')) return false;
  return null;
}

/** sysfs_streq: equal, ignoring one trailing newline on the written value. */
export function sysfsName(value: string): string {
  return value.endsWith('\n') ? value.slice(0, -1) : value;
}

/** The hex fields of a new_id/remove_id write ("8086 10ca [subvendor subdevice class mask]"). */
export function hexFields(value: string): number[] {
  const fields: number[] = [];
  for (const word of value.trim().split(/\s+/)) {
    if (!/^(0x)?[0-9a-fA-F]+$/i.test(word)) break;
    fields.push(Number.parseInt(word.replace(/^0x/i, ''), 16));
  }
  return fields;
}
