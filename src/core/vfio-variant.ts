import type { PciDevice } from './device.js';
import { DEFAULT_STUB_DRIVER, registeredStubName } from './stub-driver.js';

/**
 * vfio-pci variant drivers (mlx5_vfio_pci, hisi_acc_vfio_pci, ...) declare the devices they are
 * made for as override-only ID table entries, which depmod writes to modules.alias as
 * "alias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_vfio_pci"; vfio-pci itself matches every
 * device ("vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci"). As libvirt (>= 10.0) does for a managed device
 * with no driver named, the most specific alias that matches the device picks its stub driver.
 */

/** The seven fields of a PCI modalias, in the kernel's order: v d sv sd bc sc i. */
export type ModaliasFields = readonly [string, string, string, string, string, string, string];

export interface VfioAlias {
  readonly fields: ModaliasFields;
  readonly module: string;
}

const FIELD = '([0-9A-F]+|\\*)';
const ALIAS_LINE = new RegExp(`^alias\\s+vfio_pci:v${FIELD}d${FIELD}sv${FIELD}sd${FIELD}bc${FIELD}sc${FIELD}i${FIELD}\\s+(\\S+)\\s*$`);

/** The `vfio_pci:` aliases of a modules.alias file, in file order; other lines are skipped. */
export function parseVfioAliases(text: string): VfioAlias[] {
  const aliases: VfioAlias[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('alias vfio_pci:')) continue;
    const match = ALIAS_LINE.exec(line);
    if (match === null) continue;
    const [, v, d, sv, sd, bc, sc, i, module] = match as unknown as [string, string, string, string, string, string, string, string, string];
    aliases.push({ fields: [v, d, sv, sd, bc, sc, i], module });
  }
  return aliases;
}

/**
 * The device's modalias fields, as the kernel's `modalias` file spells them
 * ("pci:v00008086d000010CAsv...bc02sc00i00"); null when an ID is unknown.
 */
export function modaliasFields(device: PciDevice): ModaliasFields | null {
  const { vendor, device: id, subsystemVendor, subsystemDevice, class: pciClass, progIf } = device;
  if (vendor === null || id === null || subsystemVendor === null || subsystemDevice === null || pciClass === null || progIf === null) {
    return null;
  }
  const wide = (hex: string): string => hex.toUpperCase().padStart(8, '0');
  const upper = pciClass.toUpperCase();
  return [wide(vendor), wide(id), wide(subsystemVendor), wide(subsystemDevice), upper.slice(0, 2), upper.slice(2, 4), progIf.toUpperCase()];
}

/** The modalias line itself, "pci:v...i..": what the kernel's `modalias` file holds. */
export function modaliasText(fields: ModaliasFields): string {
  const [v, d, sv, sd, bc, sc, i] = fields;
  return `pci:v${v}d${d}sv${sv}sd${sd}bc${bc}sc${sc}i${i}`;
}

/**
 * The module of the matching alias with the fewest wildcards (the first in file order on a tie), or
 * null when none matches. A field matches when it is "*" or equal: modules.alias has no other globs
 * in PCI aliases.
 */
export function bestVfioModule(fields: ModaliasFields, aliases: readonly VfioAlias[]): string | null {
  let best: VfioAlias | null = null;
  let bestWildcards = Number.POSITIVE_INFINITY;
  for (const alias of aliases) {
    let wildcards = 0;
    let matches = true;
    for (let k = 0; k < 7 && matches; k++) {
      const field = alias.fields[k]!;
      if (field === '*') wildcards++;
      else matches = field === fields[k];
    }
    if (matches && wildcards < bestWildcards) {
      best = alias;
      bestWildcards = wildcards;
    }
  }
  return best?.module ?? null;
}

/** The stub driver a module gives: vfio_pci registers "vfio-pci"; the variants use their module's name. */
export function stubDriverOfModule(module: string): string {
  return registeredStubName(module);
}

/** The stub driver for a device: its best vfio-pci variant, else vfio-pci. */
export function vfioStubFor(device: PciDevice, aliases: readonly VfioAlias[]): string {
  const fields = modaliasFields(device);
  const module = fields !== null ? bestVfioModule(fields, aliases) : null;
  return module !== null ? stubDriverOfModule(module) : DEFAULT_STUB_DRIVER;
}
