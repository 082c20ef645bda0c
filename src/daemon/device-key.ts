import { parseAddress, type PciAddress } from '../core/address.js';

/**
 * A device key from a URL: `pci:0000:01:10.0`, or a bare PCI address in any spelling
 * `parseAddress` takes. The one place the daemon turns a key into an address.
 */
export function parseDeviceKey(key: string): PciAddress {
  return parseAddress(key.startsWith('pci:') ? key.slice('pci:'.length) : key);
}

/** The key the API names a PCI function by (events, operations). */
export function deviceKey(address: PciAddress | string): string {
  return `pci:${address}`;
}
