import { HostdevError } from './errors.js';

/**
 * Stub drivers: drivers that park a device for a VM instead of using it on the host.
 * vfio-pci, the legacy pci-stub and Xen's pciback, plus vfio-pci variant drivers, which the
 * kernel names "<vendor>_vfio_pci" (mlx5_vfio_pci, hisi_acc_vfio_pci, nvgrace_gpu_vfio_pci, ...).
 */
const KNOWN_STUBS = new Set(['vfio-pci', 'vfio_pci', 'pci-stub', 'pciback']);

export const DEFAULT_STUB_DRIVER = 'vfio-pci';

/** Module spellings of stub drivers that register under another name (modprobe takes either). */
const REGISTERED_AS: Readonly<Record<string, string>> = {
  vfio_pci: 'vfio-pci',
  pci_stub: 'pci-stub',
  'xen-pciback': 'pciback',
  xen_pciback: 'pciback',
};

/**
 * The name a stub driver has under /sys/bus/pci/drivers: `--driver vfio_pci` means vfio-pci (as
 * libvirt's driver lookup tries both spellings); driver_override must name the driver exactly.
 */
export function registeredStubName(name: string): string {
  return REGISTERED_AS[name] ?? name;
}

/**
 * The stub a request names (`--driver`), as registered: vfio-pci, a vfio-pci variant (a module
 * named *_vfio_pci, or one with a `vfio_pci:` alias in modules.alias: `variantModules`), pci-stub
 * or xen-pciback; modules.alias is read only for a name that is none of the others. Any other driver would use the device on the host, not park it: HOSTDEV_USAGE.
 */
export function requestedStubDriver(name: string, variantModules: () => readonly string[]): string {
  const registered = registeredStubName(name);
  if (isStubDriver(registered)) return registered;
  const modules = variantModules();
  if (modules.includes(name)) return registered;
  const variants = [...new Set(modules.filter((module) => module !== 'vfio_pci'))];
  const here = variants.length === 0 ? '' : ` (this host's modules.alias names ${variants.join(', ')})`;
  throw new HostdevError('HOSTDEV_USAGE', `--driver ${name} is not a stub driver: a device can be parked only on ${ACCEPTED_STUBS}${here}`, {
    hint: `Leave --driver out (hostdev picks vfio-pci or the device's variant), or name one of: ${ACCEPTED_STUBS}.`,
    details: { driver: name, variants },
  });
}

const ACCEPTED_STUBS = 'vfio-pci, a vfio-pci variant driver (*_vfio_pci), pci-stub or xen-pciback';

export function isStubDriver(name: string | null | undefined): boolean {
  if (name === null || name === undefined) return false;
  return KNOWN_STUBS.has(name) || /^[a-z0-9_]+_vfio_pci$/.test(name);
}

/** VFIO drivers need an IOMMU group; pci-stub and pciback do not. */
export function isVfioDriver(name: string): boolean {
  return name === 'vfio-pci' || name === 'vfio_pci' || name.endsWith('_vfio_pci');
}

/**
 * The name to load a driver by. modprobe treats "-" and "_" alike, so the driver's own name
 * ("vfio-pci") loads its module (vfio_pci); the simulated kernel knows drivers by that name too.
 */
export function moduleOf(driver: string): string {
  return driver;
}
