/**
 * How a PCI function's device key is spelled ("pci:" and its address): one rule, here, so that
 * the error catalog (which imports nothing that could import it back) and core/device-key.ts
 * spell it alike.
 */
export function pciKeyText(address: string): string {
  return `pci:${address}`;
}
