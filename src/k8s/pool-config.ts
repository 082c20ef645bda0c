import { readFileSync } from 'node:fs';
import { parseDocument, LineCounter } from 'yaml';
import { z } from 'zod';
import { HostdevError } from '../core/errors.js';
import { parseIndexRanges, type Pool, type PoolSelector } from '../core/pools.js';

/**
 * The kubelet plugin's pools, from a YAML or JSON file (JSON is YAML):
 *
 *   pools:
 *     - name: igb-vf
 *       resourceName: hostdev.io/igb-vf
 *       wholeGroups: false
 *       selectors:
 *         - { pf: "enp1s0f0#0-3,6" }
 *         - { vendor: "8086", device: "10ca" }
 *
 * A mistake names the file, the line and the field.
 */
const HEX4 = /^(0x)?[0-9a-fA-F]{4}$/;
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const RESOURCE = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$/;

const selector = z
  .strictObject({
    vendor: z.string().regex(HEX4, 'four hex digits, e.g. "8086"').optional(),
    device: z.string().regex(HEX4, 'four hex digits, e.g. "10ca"').optional(),
    driver: z.string().min(1).optional(),
    class: z.string().regex(/^(0x)?[0-9a-fA-F]{2,6}$/, 'a hex class prefix, e.g. "02" or "0200"').optional(),
    pf: z
      .string()
      .refine((value) => {
        const [pf, ranges] = value.split('#', 2);
        return pf !== undefined && pf.length > 0 && (ranges === undefined || parseIndexRanges(ranges) !== null);
      }, 'a PF netdev or PCI address, optionally with VF indexes: "enp1s0f0#0-3,6"')
      .optional(),
    address: z.string().regex(/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/, 'a full PCI address, e.g. "0000:01:10.0"').optional(),
    numaNode: z.number().int().min(0).optional(),
  })
  .refine((value) => Object.keys(value).length > 0, 'a selector names at least one field');

const config = z.strictObject({
  pools: z
    .array(
      z.strictObject({
        name: z.string().regex(NAME, 'lower-case letters, digits and dashes, at most 63'),
        resourceName: z.string().regex(RESOURCE, 'DOMAIN/NAME, e.g. hostdev.io/igb-vf'),
        wholeGroups: z.boolean().optional(),
        selectors: z.array(selector).min(1),
      }),
    )
    .min(1)
    .refine((pools) => new Set(pools.map((p) => p.name)).size === pools.length, 'pool names must differ')
    .refine((pools) => new Set(pools.map((p) => p.resourceName)).size === pools.length, 'resource names must differ'),
});

function configError(file: string, message: string): HostdevError {
  return new HostdevError('HOSTDEV_USAGE', `${file}: ${message}`, {
    hint: 'Fix the pool file (README, "Kubernetes") and start the plugin again.',
    details: { path: file },
  });
}

export function parsePoolConfig(text: string, file: string): Pool[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    throw configError(file, `line ${first.linePos?.[0]?.line ?? '?'}: ${first.message.split('\n')[0]}`);
  }
  const parsed = config.safeParse(doc.toJS());
  if (parsed.success) {
    return parsed.data.pools.map((pool) => ({
      name: pool.name,
      resourceName: pool.resourceName,
      wholeGroups: pool.wholeGroups ?? false,
      // A selector's fields that were not given are left out, not present as undefined.
      selectors: pool.selectors.map((s) => Object.fromEntries(Object.entries(s).filter(([, value]) => value !== undefined)) as PoolSelector),
    }));
  }
  const issue = parsed.error.issues[0]!;
  const node = doc.getIn(issue.path.filter((p): p is string | number => typeof p !== 'symbol'), true) as { range?: [number, number, number] } | undefined;
  const line = node?.range === undefined ? null : lines.linePos(node.range[0]).line;
  const where = issue.path.length > 0 ? issue.path.join('.') : '(top)';
  throw configError(file, `${line === null ? '' : `line ${line}: `}${where}: ${issue.message}`);
}

export function readPoolConfig(file: string): Pool[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw configError(file, `cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return parsePoolConfig(text, file);
}
