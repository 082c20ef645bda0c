import { z } from 'zod';

/**
 * A simulated host, declared: root buses, bridges and endpoints nested as on the wire, the
 * drivers the host knows, IOMMU groups (explicit or derived from ACS), SR-IOV PFs. The builder
 * turns it into a tree shaped like Linux sysfs; the simulated kernel then mutates that tree.
 *
 * Hex IDs are written without "0x" ("8086", class "020000"); "0x" prefixes are accepted.
 */
export interface HostSpec {
  /** Free text, shown by `hostdev sim create`. */
  readonly description?: string;
  /** false: no IOMMU (no groups at all, as on a host booted without intel_iommu=on). Default true. */
  readonly iommu?: boolean;
  /** Drivers (modules) the simulated host knows, with their static ID tables. */
  readonly drivers?: Readonly<Record<string, DriverSpec>>;
  /**
   * The kernel release the host stands for: ROOT/proc/sys/kernel/osrelease, with a modules.alias
   * under ROOT/lib/modules/RELEASE (vfio-pci's catch-all alias and every driver's vfioAliases).
   * Default "6.1.0-hostdev-sim" when a driver has vfioAliases; else none (no modules.alias).
   */
  readonly kernelRelease?: string;
  readonly roots: readonly RootSpec[];
  /** mdev parents that are no PCI function (mtty), made at boot as if their module were loaded. */
  readonly virtualMdevParents?: readonly VirtualMdevParentSpec[];
}

/** One entry of a driver's ID table; an absent field matches anything (PCI_ANY_ID). */
export interface DriverIdSpec {
  readonly vendor?: string;
  readonly device?: string;
  readonly subsystemVendor?: string;
  readonly subsystemDevice?: string;
  /** 6 hex digits; compared under classMask (default "ffffff"). */
  readonly class?: string;
  readonly classMask?: string;
}

export interface DriverSpec {
  readonly ids?: readonly DriverIdSpec[];
  /** false: known module, not loaded (its sys/bus/pci/drivers/<name> appears on loadModule). Default true. */
  readonly loaded?: boolean;
  /**
   * For a vfio-pci variant driver (mlx5_vfio_pci, ...): the devices it is made for. Like the
   * kernel's override-only entries (PCI_DRIVER_OVERRIDE_DEVICE_VFIO) they never make the driver
   * probe a device by itself: they are written to modules.alias as `vfio_pci:` aliases, where
   * libvirt and hostdev look for them, and the driver takes a device through driver_override.
   */
  readonly vfioAliases?: readonly DriverIdSpec[];
}

/** A root bus: sys/devices/pci<domain>:<bus>/. */
interface RootSpec {
  readonly domain?: number;
  readonly bus?: number;
  /** Default NUMA node of the functions under it; -1 (the default) means no NUMA. */
  readonly numaNode?: number;
  readonly devices: readonly NodeSpec[];
}

interface FunctionSpecBase {
  /** Slot and function on the parent bus, "1c.0" (hex slot, function 0-7). */
  readonly at: string;
  readonly vendor: string;
  readonly device: string;
  readonly subsystemVendor?: string;
  readonly subsystemDevice?: string;
  /** 2 hex digits, default "00". */
  readonly revision?: string;
  /**
   * Bound driver: a name, null for unbound. Absent: the first loaded driver whose ID table
   * matches (as the kernel's probe would pick). A named driver gets the device's ID in its table.
   */
  readonly driver?: string | null;
  /** Explicit IOMMU group number (otherwise derived, see iommu-groups in builder). */
  readonly iommuGroup?: number;
  readonly numaNode?: number;
  /**
   * ACS: on a bridge, whether it isolates what is below it (default true); on a function of a
   * multifunction device, whether its functions are isolated from each other (default false).
   */
  readonly acs?: boolean;
  /** Attribute files to leave out, as some kernels and devices do ("numa_node", "reset_method"). */
  readonly omitFiles?: readonly string[];
}

type BridgePort = 'root-port' | 'upstream' | 'downstream' | 'pci-bridge';

export interface BridgeSpec extends FunctionSpecBase {
  readonly kind: 'bridge';
  readonly port?: BridgePort;
  readonly secondaryBus: number;
  readonly children: readonly NodeSpec[];
}

interface SriovSpec {
  readonly totalVfs: number;
  /** First VF offset and VF stride, in routing-ID units (igb: 128 and 2). */
  readonly offset: number;
  readonly stride: number;
  readonly vfDevice: string;
  /** Driver that claims the VFs (its ID table gets vendor:vfDevice); null: none. */
  readonly vfDriver: string | null;
  /** VFs created at build time (sriov_numvfs). Default 0. */
  readonly numVfs?: number;
  /** sriov_drivers_autoprobe. Default true. */
  readonly autoprobe?: boolean;
  /** Interface name of VF n while it is on vfDriver: "{pf}" and "{n}" are substituted. */
  readonly vfNetdev?: string;
}

export interface EndpointSpec extends FunctionSpecBase {
  readonly kind?: 'endpoint';
  /** Base class, subclass, prog-if: "020000". */
  readonly class: string;
  /** reset_method contents. Default: "flr" when flr, plus "bus" when behind a bridge. */
  readonly resetMethods?: readonly string[];
  /** Function Level Reset in the PCI Express DevCap register. Default false. */
  readonly flr?: boolean;
  /** Interfaces under net/ while the device is on its default driver. */
  readonly netdevs?: readonly string[];
  readonly sriov?: SriovSpec;
  /** false: conventional PCI (no PCI Express capability). Default true. */
  readonly pcie?: boolean;
  /** PCI Express Device Serial Number (extended capability 0x0003): 8 bytes as lspci prints them, "00-1b-21-ff-ff-8a-3c-12". */
  readonly serialNumber?: string;
  /** Vital Product Data (the function's `vpd` file): the identifier string and the read-only PN, SN, EC and MN keywords. */
  readonly vpd?: VpdSpec;
  /** A USB host controller's buses (xHCI has two root hubs: USB 2 and USB 3) and what is plugged in. */
  readonly usbBuses?: readonly UsbBusSpec[];
  /** A mediated-device parent: the types it offers (mdev_supported_types) and mdevs made at build time. */
  readonly mdev?: MdevParentSpec;
  /** An NVMe controller's namespaces: under nvme/nvmeN while the controller is on the nvme driver. */
  readonly nvme?: NvmeSpec;
  /** A SCSI host adapter: its host number and the devices on it. */
  readonly scsi?: ScsiHostSpec;
}

export interface VpdSpec {
  readonly productName?: string;
  readonly partNumber?: string;
  readonly serialNumber?: string;
  readonly engineeringChange?: string;
  readonly manufacturer?: string;
}

export interface UsbDeviceSpec {
  /** The port path below the root hub: "1", "1.2" (a device on port 2 of the hub on port 1). */
  readonly port: string;
  readonly vendor: string;
  readonly product: string;
  readonly manufacturer?: string;
  readonly productName?: string;
  readonly serial?: string;
  /** The address on its bus; default: the next free one, in spec order from 2 (as enumeration gives them). */
  readonly devnum?: number;
  /** bDeviceClass, 2 hex digits; "09" is a hub. Default "00". */
  readonly deviceClass?: string;
  /** Each interface's class (2 hex digits) and driver (null: unbound). */
  readonly interfaces?: readonly { readonly class: string; readonly driver: string | null }[];
}

export interface UsbBusSpec {
  readonly bus: number;
  /** 480 (USB 2 root hub) or 5000 (USB 3). Default 480. */
  readonly speed?: number;
  readonly devices: readonly UsbDeviceSpec[];
}

export interface MdevTypeSpec {
  /** The type's directory name, as the parent driver prefixes it: "i915-GVTg_V5_4", "mtty-2". */
  readonly id: string;
  readonly name: string;
  readonly description?: string;
  readonly availableInstances: number;
  /** Default "vfio-pci". */
  readonly deviceApi?: string;
  /** With the parent's `capacity`: what one instance of this type takes of it (mtty-2: 2 ports). Default 1. */
  readonly cost?: number;
  /** Writable attributes every mdev of this type shows in its directory (vfio_ap's assign_adapter, say): what mdevctl's `attrs` write after create. */
  readonly attributes?: readonly string[];
}

export interface MdevParentSpec {
  /** The mdev driver the parent's devices bind to (its directory under /sys/bus/mdev/drivers). */
  readonly driver: string;
  readonly types: readonly MdevTypeSpec[];
  readonly devices?: readonly { readonly uuid: string; readonly type: string }[];
  /**
   * The types share one pool of this size (mtty's 24 ports): each type's available_instances is what is
   * left of it divided by the type's cost, so making one type's mdev lowers the others' counts too.
   * Each type's availableInstances must then be capacity / cost.
   */
  readonly capacity?: number;
}

/** An mdev parent that is no PCI function (a module's virtual device, as the kernel's mtty sample registers). */
export interface VirtualMdevParentSpec extends MdevParentSpec {
  /** /sys/devices/virtual/CLASS/NAME, and /sys/class/mdev_bus/NAME. */
  readonly name: string;
  readonly class: string;
}

export interface NvmeSpec {
  /** The controller's number: nvme0. */
  readonly instance: number;
  readonly model?: string;
  readonly serial?: string;
  readonly namespaces: readonly { readonly nsid: number; readonly sectors: number }[];
}

export interface ScsiDeviceSpec {
  readonly channel: number;
  readonly target: number;
  readonly lun: number;
  /** SPC peripheral device type: 0 disk, 1 tape, 5 cdrom, 8 medium changer. */
  readonly type: number;
  readonly vendor: string;
  readonly model: string;
  readonly rev?: string;
  /** N of /dev/sgN. */
  readonly sg: number;
  /** The block device of a disk or cdrom (sda, sr0). */
  readonly block?: string;
}

export interface ScsiHostSpec {
  readonly host: number;
  readonly devices: readonly ScsiDeviceSpec[];
}

export type NodeSpec = BridgeSpec | EndpointSpec;

export function isBridge(node: NodeSpec): node is BridgeSpec {
  return node.kind === 'bridge';
}

/**
 * A spec that cannot be built, with the field that says why ("roots.0.devices.1.sriov.numVfs").
 * Thrown before anything is written.
 */
export class SpecError extends Error {
  override readonly name = 'SpecError';
  constructor(
    readonly field: string,
    readonly reason: string,
    message = `${field}: ${reason}`,
  ) {
    super(message);
  }
}

/**
 * A name the tree uses as one path component (a driver, a netdev template): a name, not a path.
 * The kernel's names never hold "/" or NUL; "." and ".." would step out of the directory.
 */
const componentName = z
  .string()
  .min(1)
  .max(255)
  .refine((name) => !name.includes('/') && !name.includes('\0') && !name.includes('..'), 'a name, not a path: no "/", ".." or NUL');

const hex = (digits: number) =>
  z
    .string()
    .regex(new RegExp(`^(0x)?[0-9a-fA-F]{1,${digits}}$`), `expected up to ${digits} hex digits`);

const driverIdSchema = z.strictObject({
  vendor: hex(4).optional(),
  device: hex(4).optional(),
  subsystemVendor: hex(4).optional(),
  subsystemDevice: hex(4).optional(),
  class: hex(6).optional(),
  classMask: hex(6).optional(),
});

const functionBase = {
  at: z.string().regex(/^[0-9a-fA-F]{1,2}\.[0-7]$/, 'expected slot.function like "1c.0"'),
  vendor: hex(4),
  device: hex(4),
  subsystemVendor: hex(4).optional(),
  subsystemDevice: hex(4).optional(),
  revision: hex(2).optional(),
  driver: componentName.nullable().optional(),
  iommuGroup: z.number().int().min(0).optional(),
  numaNode: z.number().int().min(-1).optional(),
  acs: z.boolean().optional(),
  omitFiles: z.array(z.string().regex(/^[a-z_]+$/)).optional(),
};

const sriovSchema = z.strictObject({
  totalVfs: z.number().int().min(1).max(65535),
  offset: z.number().int().min(1).max(65535),
  stride: z.number().int().min(1).max(65535),
  vfDevice: hex(4),
  vfDriver: componentName.nullable(),
  numVfs: z.number().int().min(0).max(65535).optional(),
  autoprobe: z.boolean().optional(),
  vfNetdev: componentName.optional(),
});

const hexDigits = (digits: number) => z.string().regex(new RegExp(`^[0-9a-fA-F]{${digits}}$`), `expected ${digits} hex digits`);
/** Text the kernel shows in a one-line attribute (manufacturer, model): printable, no newline. */
const oneLine = z.string().max(255).regex(/^[\x20-\x7e]*$/, 'printable ASCII on one line');

const usbDeviceSchema = z.strictObject({
  port: z.string().regex(/^[1-9][0-9]?(\.[1-9][0-9]?){0,5}$/, 'expected a port path like "1" or "1.2"'),
  vendor: hexDigits(4),
  product: hexDigits(4),
  manufacturer: oneLine.optional(),
  productName: oneLine.optional(),
  serial: oneLine.optional(),
  devnum: z.number().int().min(2).max(127).optional(),
  deviceClass: hexDigits(2).optional(),
  interfaces: z.array(z.strictObject({ class: hexDigits(2), driver: componentName.nullable() })).max(32).optional(),
});

/** The files the mdev core gives every mdev, which a type's attributes may not shadow. */
export const MDEV_FIXED_FILES: ReadonlySet<string> = new Set(['remove', 'uevent', 'mdev_type', 'iommu_group', 'driver', 'subsystem', 'power']);

const mdevSchema = z.strictObject({
  driver: componentName,
  types: z
    .array(
      z.strictObject({
        id: componentName.pipe(z.string().regex(/^[A-Za-z0-9_.-]+$/)),
        name: oneLine,
        description: z.string().max(4096).optional(),
        availableInstances: z.number().int().min(0).max(65535),
        deviceApi: componentName.optional(),
        cost: z.number().int().min(1).max(65535).optional(),
        attributes: z
          .array(componentName.pipe(z.string().regex(/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/)))
          .max(32)
          .refine((names) => names.every((name) => !MDEV_FIXED_FILES.has(name)), 'an attribute may not be named as one of the files every mdev has')
          .optional(),
      }),
    )
    .min(1),
  devices: z
    .array(z.strictObject({ uuid: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a lower-case UUID'), type: z.string() }))
    .optional(),
  capacity: z.number().int().min(1).max(65535).optional(),
});

const nvmeSchema = z.strictObject({
  instance: z.number().int().min(0).max(65535),
  model: oneLine.optional(),
  serial: oneLine.optional(),
  namespaces: z.array(z.strictObject({ nsid: z.number().int().min(1).max(0xfffffffe), sectors: z.number().int().min(0) })).max(1024),
});

const scsiSchema = z.strictObject({
  host: z.number().int().min(0).max(65535),
  devices: z
    .array(
      z.strictObject({
        channel: z.number().int().min(0).max(255),
        target: z.number().int().min(0).max(65535),
        lun: z.number().int().min(0).max(65535),
        type: z.number().int().min(0).max(31),
        vendor: oneLine.max(8),
        model: oneLine.max(16),
        rev: oneLine.max(4).optional(),
        sg: z.number().int().min(0).max(65535),
        block: z.string().regex(/^(sd[a-z]{1,3}|sr[0-9]{1,3})$/).optional(),
      }),
    )
    .max(1024),
});

/** A VPD keyword's value: printable ASCII, at most 255 bytes (its length is one byte). */
const vpdText = z.string().regex(/^[\x20-\x7e]{1,64}$/);

const endpointSchema = z.strictObject({
  ...functionBase,
  kind: z.literal('endpoint').optional(),
  class: hex(6),
  resetMethods: z.array(z.enum(['flr', 'af_flr', 'pm', 'bus', 'cxl_bus', 'device_specific', 'acpi'])).optional(),
  flr: z.boolean().optional(),
  netdevs: z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/)).optional(),
  sriov: sriovSchema.optional(),
  pcie: z.boolean().optional(),
  serialNumber: z.string().regex(/^[0-9a-fA-F]{2}(-[0-9a-fA-F]{2}){7}$/).optional(),
  vpd: z
    .strictObject({
      productName: vpdText.optional(),
      partNumber: vpdText.optional(),
      serialNumber: vpdText.optional(),
      engineeringChange: vpdText.optional(),
      manufacturer: vpdText.optional(),
    })
    .optional(),
  usbBuses: z
    .array(z.strictObject({ bus: z.number().int().min(1).max(127), speed: z.number().int().optional(), devices: z.array(usbDeviceSchema).max(127) }))
    .optional(),
  mdev: mdevSchema.optional(),
  nvme: nvmeSchema.optional(),
  scsi: scsiSchema.optional(),
});

const bridgeSchema = z.strictObject({
  ...functionBase,
  kind: z.literal('bridge'),
  port: z.enum(['root-port', 'upstream', 'downstream', 'pci-bridge']).optional(),
  secondaryBus: z.number().int().min(1).max(255),
  get children() {
    return z.array(nodeSchema);
  },
});

const nodeSchema: z.ZodType<unknown> = z.union([bridgeSchema, endpointSchema]);

const hostSpecSchema = z.strictObject({
  description: z.string().optional(),
  iommu: z.boolean().optional(),
  drivers: z
    .record(
      componentName.pipe(z.string().regex(/^[A-Za-z0-9_.-]+$/)),
      z.strictObject({ ids: z.array(driverIdSchema).optional(), loaded: z.boolean().optional(), vfioAliases: z.array(driverIdSchema).optional() }),
    )
    .optional(),
  kernelRelease: componentName.pipe(z.string().regex(/^[A-Za-z0-9._+-]+$/)).optional(),
  roots: z.array(
    z.strictObject({
      domain: z.number().int().min(0).max(0xffff).optional(),
      bus: z.number().int().min(0).max(255).optional(),
      numaNode: z.number().int().min(-1).optional(),
      devices: z.array(nodeSchema),
    }),
  ),
  virtualMdevParents: z.array(mdevSchema.extend({ name: componentName, class: componentName })).max(64).optional(),
});

/**
 * Validates the shape of untrusted JSON (a `--spec FILE`); throws a SpecError naming the first bad
 * field (its message lists them all). What only the whole tree shows (two functions at one address,
 * VFs beyond bus ff) the builder checks before it writes anything (checkSpec in builder.ts).
 */
export function parseHostSpec(input: unknown): HostSpec {
  // The schema mirrors the interfaces above; zod's optional fields are `T | undefined`, which
  // exactOptionalPropertyTypes distinguishes from absent, hence the cast after validation.
  const result = hostSpecSchema.safeParse(input);
  if (!result.success) {
    const where = result.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    const first = result.error.issues[0]!;
    throw new SpecError(first.path.join('.') || '(top)', first.message, where.join('; '));
  }
  return result.data as HostSpec;
}

/** The host spec as a JSON Schema (draft 2020-12), generated from the schema `--spec` is checked with. */
export function hostSpecJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(hostSpecSchema, { target: 'draft-2020-12', io: 'input' }),
    title: 'hostdev simulated host spec (hostdev sim create --spec FILE)',
  };
}
