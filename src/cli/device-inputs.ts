import { tryParseAddress } from '../core/address.js';
import { parseUsbSelector } from '../core/device-entry.js';
import { tryParseId } from '../core/device-key.js';
import { HostdevError } from '../core/errors.js';

/**
 * Whether the devices a command names are PCI functions (the PCI path, unchanged) or mediated and
 * USB devices (mdev:UUID, usb:BUS-PORT, usb:VENDOR:PRODUCT): one command takes one or the other.
 * An input that is neither is left to the PCI path, whose parse error names it.
 */
export function deviceInputs(inputs: readonly string[]): 'pci' | 'other' {
  const other = inputs.map((input) => {
    if (tryParseAddress(input) !== null) return false;
    if (parseUsbSelector(input) !== null) return true;
    const id = tryParseId(input);
    return id !== null && id.kind !== 'pci';
  });
  if (other.every((is) => !is)) return 'pci';
  if (other.every((is) => is)) return 'other';
  throw new HostdevError('HOSTDEV_USAGE', `PCI functions and devices of other kinds are named together: ${inputs.join(' ')}`, {
    hint: 'Give PCI functions in one command and mediated or USB devices (mdev:UUID, usb:BUS-PORT) in another.',
    details: { inputs },
  });
}
