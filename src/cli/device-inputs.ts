import { tryParseAddress } from '../core/address.js';
import { parseUsbSelector } from '../core/device-entry.js';
import { tryParseId } from '../core/device-key.js';

/**
 * Whether a device a command names is of another kind than PCI (mdev:UUID, usb:BUS-PORT,
 * usb:VENDOR:PRODUCT, nvme:ADDRESS/NSID, scsi:H:B:T:L): those go to the service as given. An input
 * that is neither a PCI function nor such a key is left to the PCI path, whose parse error names it.
 */
export function isOtherKind(input: string): boolean {
  if (tryParseAddress(input) !== null) return false;
  if (parseUsbSelector(input) !== null) return true;
  const id = tryParseId(input);
  return id !== null && id.kind !== 'pci';
}

/** The inputs as the service takes them: PCI functions as addresses, the other kinds as given. */
export function deviceRefs(inputs: readonly string[], pci: (input: string) => string): string[] {
  return inputs.map((input) => (isOtherKind(input) ? input : pci(input)));
}
