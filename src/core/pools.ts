import type { PciAddress } from './address.js';
import type { PciDevice } from './device.js';

/**
 * Device pools for Kubernetes: which functions a node offers under which resource name, and which
 * of them to give when the kubelet asks for several. A pool's selectors are tried in order and a
 * device goes to the first pool that has a matching selector; every field a selector names must match.
 */

export interface PoolSelector {
  readonly vendor?: string;
  readonly device?: string;
  readonly driver?: string;
  /** A class name's hex prefix: 02 (network), 0200 (ethernet), ... */
  readonly class?: string;
  /** VFs of a PF, by its netdev name or PCI address, optionally with VF indexes: `enp1s0f0#0-3,6`. */
  readonly pf?: string;
  readonly address?: string;
  readonly numaNode?: number;
}

export interface Pool {
  readonly name: string;
  readonly resourceName: string;
  readonly selectors: readonly PoolSelector[];
  /** Give IOMMU groups whole: a device whose group holds another endpoint outside the pool is left out. */
  readonly wholeGroups?: boolean;
}

/** What the pool rules need of a device besides its own fields: its PF's names and its VF index. */
export interface PoolCandidate {
  readonly device: PciDevice;
  /** The PF's netdev names (VFs only). */
  readonly pfNetdevs: readonly string[];
  /** Index among its PF's VFs (VFs only). */
  readonly vfIndex: number | null;
}

/** `0-3,6` as a set of indexes; null when the text is not such a list. */
export function parseIndexRanges(text: string): Set<number> | null {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const match = /^(\d{1,4})(?:-(\d{1,4}))?$/.exec(part.trim());
    if (match === null) return null;
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    if (to < from) return null;
    for (let i = from; i <= to; i++) out.add(i);
  }
  return out;
}

function pfMatches(selector: string, candidate: PoolCandidate): boolean {
  const { device } = candidate;
  if (device.physfn === null) return false;
  const [pf, ranges] = selector.split('#', 2) as [string, string | undefined];
  if (pf !== device.physfn && !candidate.pfNetdevs.includes(pf)) return false;
  if (ranges === undefined) return true;
  const wanted = parseIndexRanges(ranges);
  return wanted !== null && candidate.vfIndex !== null && wanted.has(candidate.vfIndex);
}

function selectorMatches(selector: PoolSelector, candidate: PoolCandidate): boolean {
  const { device } = candidate;
  const hex = (value: string | null): string => (value ?? '').toLowerCase().replace(/^0x/, '');
  if (selector.vendor !== undefined && hex(device.vendor) !== hex(selector.vendor)) return false;
  if (selector.device !== undefined && hex(device.device) !== hex(selector.device)) return false;
  if (selector.driver !== undefined && device.driver !== selector.driver) return false;
  if (selector.class !== undefined && !hex(device.class).startsWith(hex(selector.class))) return false;
  if (selector.address !== undefined && device.address !== selector.address) return false;
  if (selector.numaNode !== undefined && device.numaNode !== selector.numaNode) return false;
  if (selector.pf !== undefined && !pfMatches(selector.pf, candidate)) return false;
  return true;
}

/** The pool each endpoint belongs to (first pool, first matching selector); bridges and PFs with VFs are never pooled. */
export function poolMembers(pools: readonly Pool[], candidates: readonly PoolCandidate[]): Map<string, PciDevice[]> {
  const members = new Map<string, PciDevice[]>(pools.map((pool) => [pool.name, []]));
  for (const candidate of candidates) {
    const { device } = candidate;
    if (device.headerType !== null && device.headerType !== 'endpoint') continue;
    if (device.virtfns.length > 0) continue;
    const pool = pools.find((p) => p.selectors.some((selector) => selectorMatches(selector, candidate)));
    if (pool !== undefined) members.get(pool.name)!.push(device);
  }
  for (const pool of pools) {
    if (!pool.wholeGroups) continue;
    const mine = members.get(pool.name)!;
    const inPool = new Set<string>(mine.map((d) => d.address));
    const outside = new Set<number>();
    for (const { device } of candidates) {
      const endpoint = device.headerType === null || device.headerType === 'endpoint';
      if (endpoint && device.iommuGroup !== null && !inPool.has(device.address)) outside.add(device.iommuGroup);
    }
    members.set(
      pool.name,
      mine.filter((d) => d.iommuGroup !== null && !outside.has(d.iommuGroup)),
    );
  }
  return members;
}

export interface AllocationCandidate {
  readonly id: PciAddress;
  readonly numaNode: number | null;
  readonly pf: PciAddress | null;
  readonly iommuGroup: number | null;
}

/**
 * The devices to give for `size` when the kubelet may choose among `available` and must include
 * `mustInclude`: the must-includes first; then whole IOMMU groups together (a member pulls its group
 * mates in); from the NUMA node that already holds the most chosen devices (else the one with the
 * most available), and within it spread over PFs (the PF with the fewest chosen first). Stable:
 * ties go by address. Fewer than `size` only when `available` holds fewer.
 */
export function preferredAllocation(
  available: readonly AllocationCandidate[],
  mustInclude: readonly PciAddress[],
  size: number,
): PciAddress[] {
  const byId = new Map(available.map((c) => [c.id, c]));
  const chosen: AllocationCandidate[] = [];
  const taken = new Set<string>();
  const take = (candidate: AllocationCandidate): void => {
    if (taken.has(candidate.id) || chosen.length >= size) return;
    taken.add(candidate.id);
    chosen.push(candidate);
  };
  const takeWithGroup = (candidate: AllocationCandidate): void => {
    take(candidate);
    if (candidate.iommuGroup === null) return;
    for (const mate of sorted(available)) if (mate.iommuGroup === candidate.iommuGroup) take(mate);
  };
  const musts = mustInclude.flatMap((id) => byId.get(id) ?? []);
  for (const candidate of musts) take(candidate);
  for (const candidate of musts) takeWithGroup(candidate);
  while (chosen.length < size) {
    const rest = sorted(available).filter((c) => !taken.has(c.id));
    if (rest.length === 0) break;
    const node = preferredNode(chosen, rest);
    const onNode = rest.filter((c) => c.numaNode === node);
    const pool = onNode.length > 0 ? onNode : rest;
    const perPf = countBy(chosen, (c) => c.pf ?? c.id);
    const next = [...pool].sort((a, b) => (perPf.get(a.pf ?? a.id) ?? 0) - (perPf.get(b.pf ?? b.id) ?? 0) || a.id.localeCompare(b.id))[0]!;
    takeWithGroup(next);
  }
  return chosen.map((c) => c.id);
}

function sorted(list: readonly AllocationCandidate[]): AllocationCandidate[] {
  return [...list].sort((a, b) => a.id.localeCompare(b.id));
}

function countBy<T>(list: readonly T[], key: (item: T) => string | number | null): Map<string | number | null, number> {
  const out = new Map<string | number | null, number>();
  for (const item of list) out.set(key(item), (out.get(key(item)) ?? 0) + 1);
  return out;
}

function preferredNode(chosen: readonly AllocationCandidate[], rest: readonly AllocationCandidate[]): number | null {
  const pick = (counts: Map<string | number | null, number>): number | null => {
    let best: number | null = null;
    let bestCount = -1;
    for (const [node, count] of [...counts].sort((a, b) => Number(a[0] ?? -1) - Number(b[0] ?? -1))) {
      if (count > bestCount) {
        best = node as number | null;
        bestCount = count;
      }
    }
    return best;
  };
  if (chosen.length > 0) {
    const node = pick(countBy(chosen, (c) => c.numaNode));
    if (rest.some((c) => c.numaNode === node)) return node;
  }
  return pick(countBy(rest, (c) => c.numaNode));
}
