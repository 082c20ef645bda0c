/** Pure parsers for the files and command output the host-usage port reads. */

interface MountLine {
  readonly source: string;
  readonly target: string;
}

/** /proc/mounts: "SOURCE TARGET FSTYPE OPTIONS 0 0", with spaces in paths escaped as \040. */
export function parseMounts(text: string): MountLine[] {
  const unescape = (field: string): string => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length >= 2 && fields[0] !== '')
    .map((fields) => ({ source: unescape(fields[0]!), target: unescape(fields[1]!) }));
}

/** /proc/net/route: the interfaces that carry at least one IPv4 route (header line skipped). */
export function routedInterfaces(text: string): Map<string, string[]> {
  const routes = new Map<string, string[]>();
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const iface = fields[0];
    const destination = fields[1];
    const mask = fields[7];
    if (!iface || !destination || !mask) continue;
    routes.set(iface, [...(routes.get(iface) ?? []), destination === '00000000' ? 'default' : hexRoute(destination, mask)]);
  }
  return routes;
}

function hexRoute(destination: string, mask: string): string {
  // The kernel prints little-endian hex words.
  const octets = (hex: string): number[] => [6, 4, 2, 0].map((at) => Number.parseInt(hex.slice(at, at + 2), 16));
  const bits = octets(mask).reduce((sum, octet) => sum + octet.toString(2).replace(/0/g, '').length, 0);
  return `${octets(destination).join('.')}/${bits}`;
}

/** `ip -j addr show dev X`: its addresses, without link-local and host-scope ones (every link has those). */
export function parseIpAddr(json: string): string[] {
  let links: unknown;
  try {
    links = JSON.parse(json);
  } catch {
    return [];
  }
  if (!Array.isArray(links)) return [];
  const addresses: string[] = [];
  for (const link of links as Array<{ addr_info?: Array<{ local?: string; prefixlen?: number; scope?: string }> }>) {
    for (const info of link.addr_info ?? []) {
      if (info.local === undefined || info.scope === 'link' || info.scope === 'host') continue;
      addresses.push(`${info.local}/${info.prefixlen ?? ''}`);
    }
  }
  return addresses;
}
