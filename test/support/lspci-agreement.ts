import type { PciDevice } from '../../src/core/device.js';
import type { LspciDevice } from './lspci.js';

/**
 * The differences between `hostdev list --json` and `lspci -Dnnk`, one line each; [] when they
 * agree on every device's address, vendor, device, class, driver, and revision (which lspci
 * prints only when non-zero).
 */
export function lspciDisagreements(ours: readonly PciDevice[], theirs: readonly LspciDevice[]): string[] {
  const problems: string[] = [];
  const byAddress = new Map(ours.map((device) => [device.address as string, device]));
  const seen = new Set<string>();
  for (const lspci of theirs) {
    seen.add(lspci.address);
    const device = byAddress.get(lspci.address);
    if (!device) {
      problems.push(`${lspci.address}: listed by lspci only`);
      continue;
    }
    const compare = (field: string, mine: string | null, expected: string | null): void => {
      if (mine !== expected) problems.push(`${lspci.address}: ${field} is ${mine} here, ${expected} in lspci`);
    };
    compare('vendor', device.vendor, lspci.vendor);
    compare('device', device.device, lspci.device);
    compare('class', device.class, lspci.class);
    compare('driver', device.driver, lspci.driver);
    compare('revision', device.revision === '00' ? null : device.revision, lspci.revision);
    // Without -v lspci prints no prog-if; compare it only when a caller's output has it.
    if (lspci.progIf !== null) compare('progIf', device.progIf, lspci.progIf);
  }
  for (const device of ours) if (!seen.has(device.address)) problems.push(`${device.address}: listed by hostdev only`);
  return problems;
}
