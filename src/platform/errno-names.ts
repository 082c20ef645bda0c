import { getSystemErrorMap } from 'node:util';

/** strerror's text (lower case) -> errno name, from the system error map Node.js carries (libuv's). */
let byText: ReadonlyMap<string, string> | null = null;

function textMap(): ReadonlyMap<string, string> {
  if (byText === null) {
    const map = new Map<string, string>();
    for (const [name, message] of getSystemErrorMap().values()) map.set(message.toLowerCase(), name);
    byText = map;
  }
  return byText;
}

/**
 * The errno name a tool reported in words (`RTNETLINK answers: Invalid argument`, modprobe's
 * `could not insert 'x': Operation not permitted`): the strerror text after the last colon.
 * null when the text names no errno.
 */
export function errnoFromText(text: string): string | null {
  const lines = text.trim().split('\n');
  for (const line of lines.reverse()) {
    const said = line.slice(line.lastIndexOf(':') + 1).trim().replace(/\.$/, '').toLowerCase();
    const name = textMap().get(said);
    if (name !== undefined) return name;
  }
  return null;
}
