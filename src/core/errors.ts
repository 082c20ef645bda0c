/**
 * The one catalog of hostdev errors. Every failure a user can see has a stable code here,
 * a message that names the device (and its driver and owner where known) and a hint that says
 * what to do next. Codes are contracts: never rename one.
 */

import { pciKeyText } from './key-spelling.js';

/** Process exit codes, documented in README.md. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  unsupported: 5,
  kernel: 6,
  state: 7,
  partial: 8,
  busy: 9,
  hypervisor: 10,
} as const;
export type ExitCodeName = keyof typeof ExitCode;

interface CatalogEntry {
  readonly exit: ExitCodeName;
  readonly summary: string;
}

export const ERROR_CATALOG = {
  HOSTDEV_BAD_ADDRESS: {
    exit: 'usage',
    summary: 'A PCI address or device key could not be parsed, or names a device kind the operation does not take.',
  },
  HOSTDEV_USAGE: { exit: 'usage', summary: 'A command was called with invalid arguments or options.' },
  HOSTDEV_DOMAIN_XML: {
    exit: 'usage',
    summary: "A libvirt domain XML could not be read, or names a device hostdev cannot assign (yet); the message names the element.",
  },
  HOSTDEV_DEVICE_NOT_FOUND: { exit: 'notFound', summary: 'The PCI device does not exist on this host.' },
  HOSTDEV_NOT_ENDPOINT: { exit: 'usage', summary: 'The device is a bridge and cannot be given to a VM.' },
  HOSTDEV_IN_USE: { exit: 'conflict', summary: 'The device is owned by a domain (active table).' },
  HOSTDEV_GROUP_CONFLICT: {
    exit: 'conflict',
    summary: 'Another member of the IOMMU group is in use on the host or by another domain.',
  },
  HOSTDEV_HOST_IN_USE: {
    exit: 'conflict',
    summary: 'The host itself uses the device (IP address, route, mounted filesystem, console).',
  },
  HOSTDEV_UNMANAGED_NOT_DETACHED: {
    exit: 'conflict',
    summary: 'An unmanaged device must be detached from the host by hand before it is assigned.',
  },
  HOSTDEV_NOT_OWNED: { exit: 'conflict', summary: 'The device is not owned by the given domain.' },
  HOSTDEV_DOMAIN_NOT_FOUND: { exit: 'notFound', summary: 'The domain (under that hypervisor) holds no device.' },
  HOSTDEV_NOT_ON_STUB: {
    exit: 'conflict',
    summary: 'The device is not on a stub driver (vfio-pci), so no running VM can hold it: adopt refuses it.',
  },
  HOSTDEV_DRIFT: {
    exit: 'conflict',
    summary: 'A device is not on the driver the tables record (changed outside hostdev).',
  },
  HOSTDEV_HARDWARE_CHANGED: {
    exit: 'conflict',
    summary: 'The device at a table entry\'s address is not the one the entry was made for (other IDs or serial): a card was swapped.',
  },
  HOSTDEV_NO_IOMMU: { exit: 'unsupported', summary: 'The host has no IOMMU groups; VFIO cannot be used.' },
  HOSTDEV_NO_IOMMU_GROUP: { exit: 'unsupported', summary: 'The device has no IOMMU group.' },
  HOSTDEV_DRIVER_UNAVAILABLE: { exit: 'unsupported', summary: 'A driver needed for the operation is not available.' },
  HOSTDEV_BIND_FAILED: { exit: 'kernel', summary: 'The kernel did not bind the device to the expected driver.' },
  HOSTDEV_RESET_UNSUPPORTED: { exit: 'unsupported', summary: 'The device has no usable reset method.' },
  HOSTDEV_RESET_UNSAFE: {
    exit: 'conflict',
    summary: 'A bus-level reset would also reset a device that is in use.',
  },
  HOSTDEV_KERNEL_WRITE: { exit: 'kernel', summary: 'A sysfs write was refused by the kernel.' },
  HOSTDEV_TIMEOUT: { exit: 'kernel', summary: 'A kernel operation did not finish in time.' },
  HOSTDEV_BUSY: {
    exit: 'busy',
    summary: 'Another hostdev operation held the state lock for longer than hostdev waits for it (30 s).',
  },
  HOSTDEV_STATE: { exit: 'state', summary: 'The state database is unusable.' },
  HOSTDEV_PARTIAL: { exit: 'partial', summary: 'Some devices of a request failed; the others succeeded.' },
  HOSTDEV_NOT_SRIOV: { exit: 'unsupported', summary: 'The device is not an SR-IOV physical function.' },
  HOSTDEV_VF_RANGE: { exit: 'usage', summary: 'The VF count is outside what the PF supports (sriov_totalvfs).' },
  HOSTDEV_VF_BUSY: {
    exit: 'conflict',
    summary: 'A VF of the PF is assigned or on a stub driver; changing the VF count would pull it away.',
  },
  HOSTDEV_PF_DOWN: { exit: 'conflict', summary: 'The PF network interface is down; its VFs cannot be configured.' },
  HOSTDEV_NET_CONFIG: { exit: 'kernel', summary: 'Reading or setting VF network config through iproute2 failed.' },
  HOSTDEV_QMP: {
    exit: 'hypervisor',
    summary: "The VM's QEMU monitor (QMP) could not be reached, refused a command or did not answer in time.",
  },
  HOSTDEV_NO_FREE_SLOT: { exit: 'conflict', summary: 'The running VM has no free PCIe root port for a device to be hot-plugged.' },
  HOSTDEV_NO_CONTROLLER: { exit: 'conflict', summary: 'The running VM has no USB or SCSI controller (or no free SCSI unit) for a device to be hot-plugged onto.' },
  HOSTDEV_UNPLUG_TIMEOUT: {
    exit: 'hypervisor',
    summary: 'The VM did not give a device back (no DEVICE_DELETED from QEMU) within the wait.',
  },
  HOSTDEV_READ_ONLY: {
    exit: 'usage',
    summary: "A change was asked for on the daemon's read-only socket (hostdev-ro.sock), which only answers GET and HEAD.",
  },
  HOSTDEV_INTERRUPTED: {
    exit: 'state',
    summary: 'The daemon stopped while the operation ran; recovery at its next start rolled the operation back.',
  },
  HOSTDEV_CLAIM_MISMATCH: {
    exit: 'conflict',
    summary: 'The device at a claimed address is not the one the claim was made for (another vendor:device).',
  },
  HOSTDEV_NOT_CLAIMED: { exit: 'notFound', summary: 'No claim is defined for the device.' },
  HOSTDEV_AMBIGUOUS_DEVICE: {
    exit: 'usage',
    summary: 'A device chosen by its IDs (a USB vendor:product) matches more than one device on this host.',
  },
  HOSTDEV_NVME_CONTROLLER_SHARED: {
    exit: 'conflict',
    summary: 'Another domain holds a namespace of the same NVMe controller: all namespaces of one controller go to one domain.',
  },
  HOSTDEV_SCSI_MANAGED: {
    exit: 'usage',
    summary: "A SCSI hostdev was asked for in managed mode (managed='yes'), which libvirt refuses too: a SCSI device changes no driver.",
  },
  HOSTDEV_INTERNAL: { exit: 'failure', summary: 'A bug in hostdev.' },
} as const satisfies Record<string, CatalogEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export interface HostdevErrorDetails {
  /** The PCI function the error names; `key` is then its device key (pci:ADDRESS), set by the constructor. */
  readonly address?: string;
  readonly key?: string;
  readonly driver?: string | null;
  /** An Owner (core/tables.ts), spelled out here so that the catalog imports nothing but the key's spelling. */
  readonly owner?: { readonly driver: string; readonly domain: string; readonly hypervisor: string; readonly vm: string } | null;
  readonly errno?: string;
  readonly path?: string;
  readonly [key: string]: unknown;
}

/** Details that name a PCI function carry its device key beside its address. */
function withKey(details: HostdevErrorDetails): HostdevErrorDetails {
  if (typeof details.address !== 'string' || details.key !== undefined) return details;
  const { address, ...rest } = details;
  return { key: pciKeyText(address), address, ...rest };
}

export class HostdevError extends Error {
  override readonly name = 'HostdevError';
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: HostdevErrorDetails;

  constructor(
    code: ErrorCode,
    message: string,
    options: { hint?: string; details?: HostdevErrorDetails; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.details = withKey(options.details ?? {});
  }

  get exitCode(): number {
    return ExitCode[ERROR_CATALOG[this.code].exit];
  }

  /**
   * The error `toJSON()` wrote, back as an error (what a client gets from the daemon): a code the
   * catalog does not have becomes HOSTDEV_INTERNAL, naming it.
   */
  static fromJSON(body: { readonly code: string; readonly message: string; readonly hint?: string | null; readonly details?: HostdevErrorDetails }): HostdevError {
    const known = Object.hasOwn(ERROR_CATALOG, body.code);
    return new HostdevError(known ? (body.code as ErrorCode) : 'HOSTDEV_INTERNAL', known ? body.message : `${body.code}: ${body.message}`, {
      hint: body.hint ?? 'The daemon gave no hint; its log may say more.',
      details: body.details ?? {},
    });
  }

  toJSON(): Record<string, unknown> {
    return {
      error: { code: this.code, message: this.message, hint: this.hint ?? null, details: this.details },
    };
  }
}

export function isHostdevError(value: unknown): value is HostdevError {
  return value instanceof HostdevError;
}
