import { CLASS_NAMES, type PciDevice } from './device.js';
import { HostdevError } from './errors.js';

/** --class accepts a name (net, storage, display, bridge, ...) or a hex code: "02" or "0200". */
export function classFilter(input: string): (device: PciDevice) => boolean {
  const wanted = input.toLowerCase();
  if (/^[0-9a-f]{2}$/.test(wanted) || /^[0-9a-f]{4}$/.test(wanted)) {
    return (device) => device.class !== null && device.class.startsWith(wanted);
  }
  const base = Object.entries(CLASS_NAMES).find(([, name]) => name === wanted)?.[0];
  if (base === undefined) {
    throw new HostdevError('HOSTDEV_USAGE', `unknown device class "${input}"`, {
      hint: `Use one of: ${Object.keys(CLASS_NAMES).sort().map((code) => CLASS_NAMES[code]).join(', ')}; or a hex class code like 02 or 0200.`,
      details: { class: input },
    });
  }
  return (device) => device.class !== null && device.class.startsWith(base);
}
