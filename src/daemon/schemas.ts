import { z } from 'zod';
import { WIRE_KINDS } from '../core/operations.js';

/**
 * The API's request and response shapes. Requests are checked with these schemas; the OpenAPI
 * document (docs/openapi.json) is generated from them, so the two cannot drift apart.
 */

export const API_VERSION = '1.0';
/** Features added to /v1 after its first release; a client checks for one before it uses it. */
export const API_EXTENSIONS = ['operations', 'events-ndjson', 'events-sse', 'dry-run', 'metrics', 'serves', 'noop-false'] as const;

const flag = z
  .enum(['true', 'false', '1', '0'])
  .transform((value) => value === 'true' || value === '1')
  .describe('true or false');
const millis = z.coerce.number().int().min(0).max(3_600_000);

export const DeviceKey = z
  .string()
  .describe('a PCI function: pci:0000:01:10.0, or a bare address (0000:01:10.0, 01:10.0, pci_0000_01_10_0)');

export const AnyDeviceKey = z
  .string()
  .describe(
    'a device key of any kind: a PCI function (pci:0000:01:10.0 or a bare address), mdev:UUID, usb:BUS-PORT (or usb:VENDOR:PRODUCT for the one such device), nvme:ADDRESS/NSID, scsi:HOST:BUS:TARGET:LUN (kinds hostdev does not assign yet are refused with HOSTDEV_BAD_ADDRESS)',
  );

export const ListQuery = z.object({
  class: z.string().optional().describe('net, storage, display, bridge, ... or a hex class code (02, 0200)'),
  driver: z.string().optional().describe('only devices bound to this driver'),
});

export const MutationQuery = z.object({
  dryRun: flag.optional().describe('return the plan (the ordered sysfs writes and table changes); change nothing'),
  wait: millis.optional().describe('how long to wait for the operation (ms, default 30000) before answering 202'),
  noop: flag.optional().describe('false: the same assign again by the same owner is the HOSTDEV_IN_USE error (409), as the command line reports it, instead of a 200 no-op'),
});

export const OperationsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).optional().describe('the newest N operations (default 100)'),
});

export const WaitQuery = z.object({
  timeout: millis.optional().describe('longest wait in ms (default 30000)'),
});

export const EventsQuery = z.object({
  since: z.coerce.number().int().min(0).optional().describe('replay the events after this sequence number'),
});

export const DetachBody = z
  .strictObject({
    driver: z.string().optional().describe('stub driver (default: the variant modules.alias names, else vfio-pci)'),
    force: z.boolean().optional().describe('detach even if the host uses the device'),
    waitMs: z.number().int().min(0).optional().describe('longest wait for device reads the kernel holds (default 15000)'),
  })
  .default({});

export const PlainBody = z
  .strictObject({
    waitMs: z.number().int().min(0).optional().describe('longest wait for device reads the kernel holds (default 15000)'),
  })
  .default({});

export const ReattachBody = z
  .strictObject({
    force: z.boolean().optional().describe('reattach even a device whose card is not the one its entry was made for (HOSTDEV_HARDWARE_CHANGED)'),
    waitMs: z.number().int().min(0).optional().describe('longest wait for device reads the kernel holds (default 15000)'),
  })
  .default({});

export const SriovBody = z.strictObject({
  numVfs: z.number().int().min(0).describe('the VF count wanted'),
  force: z.boolean().optional().describe('prune assigned or detached VFs from the tables first'),
  autoprobe: z.boolean().nullable().optional().describe('set sriov_drivers_autoprobe first (null: leave it)'),
  waitMs: z.number().int().min(0).optional().describe('longest wait for the VFs to appear (default 30000)'),
});

export const VfOptions = z.strictObject({
  mac: z.string().optional(),
  vlan: z.number().int().min(0).max(4095).optional(),
  spoofchk: z.boolean().optional(),
  trust: z.boolean().optional(),
});

export const AssignBody = z.strictObject({
  domain: z.string().min(1).describe('the domain (VM) that gets the devices'),
  hypervisor: z.string().min(1).optional().describe('default qemu'),
  devices: z.array(AnyDeviceKey).min(1).describe('all or nothing: the PCI functions first, then mediated and USB devices; when those fail the PCI functions are released again'),
  unmanaged: z.array(DeviceKey).optional().describe('PCI functions assigned unmanaged (already on a stub) whatever managed says'),
  shareable: z.array(AnyDeviceKey).optional().describe("SCSI devices of devices taken shareable (libvirt's <shareable/>): other domains may hold them shareable too"),
  managed: z.boolean().optional().describe('default true: hostdev detaches the devices itself'),
  withGroup: z.boolean().optional().describe("take every endpoint of the devices' IOMMU groups along"),
  driver: z.string().optional().describe('stub driver for managed devices'),
  force: z.boolean().optional().describe('assign even if the host uses a device'),
  vf: z.record(z.string(), VfOptions).optional().describe('VF network config by device key'),
  waitMs: z.number().int().min(0).optional().describe('longest wait for device reads the kernel holds (default 15000)'),
  holderPid: z.number().int().min(1).optional().describe('the process that holds the devices: when it ends (pid and start time) they are released'),
  qmp: z.string().min(1).optional().describe("the running VM's QMP socket as the holder: when QEMU stops answering there the devices are released"),
});

export const HotplugBody = AssignBody.omit({ domain: true, hypervisor: true, qmp: true, unmanaged: true, shareable: true }).extend({
  devices: z.array(DeviceKey).min(1).describe('PCI functions, all or nothing'),
  qmp: z.string().min(1).describe("the running VM's QMP socket (the daemon's connection to it is used when it has one)"),
});

export const UnplugBody = z.strictObject({
  qmp: z.string().min(1).describe("the running VM's QMP socket"),
  devices: z.array(DeviceKey).min(1),
  timeoutMs: z.number().int().min(0).optional().describe('how long the guest has to give the devices back (default 10000)'),
});

export const AdoptBody = z.strictObject({
  domain: z.string().min(1).describe('the domain (VM) that holds the devices already'),
  hypervisor: z.string().min(1).optional().describe('default qemu'),
  devices: z.array(DeviceKey).min(1).describe('all or nothing; each on a stub driver and in no other domain'),
  managed: z.boolean().optional().describe('default true: a device in no table goes back to the host at release'),
  holderPid: z.number().int().min(1).optional().describe('the process that holds the devices: when it ends they are released'),
  qmp: z.string().min(1).optional().describe("the running VM's QMP socket as the holder"),
});

export const ReleaseQuery = MutationQuery.extend({
  devices: z.string().optional().describe('comma-separated device keys of any kind (pci:, mdev:, usb:; default: every device of the domain)'),
  force: flag.optional().describe('release even a device whose card is not the one its entry was made for (HOSTDEV_HARDWARE_CHANGED)'),
  waitMs: millis.optional().describe('longest wait for device reads the kernel holds (default 15000), as waitMs in the bodies of the other changes'),
});

export const QemuArgsQuery = z.object({
  machine: z.enum(['q35', 'pc']).optional(),
  firstChassis: z.coerce.number().int().min(0).optional(),
});

export const ErrorBody = z
  .strictObject({
    error: z.strictObject({
      code: z.string().describe('a code of the error catalog (README: Error codes)'),
      message: z.string(),
      hint: z.string().nullable(),
      details: z.record(z.string(), z.unknown()),
    }),
  })
  .describe('every error; the HTTP status follows the code\'s exit class');

// ---- responses: what the daemon sends. test/daemon/response-schemas.test.ts validates a real
// answer of every endpoint against these (strict objects: a field added to a report fails it until
// it is described here, so the schemas and docs/openapi.json cannot drift from what is sent).

const Address = z.string().describe('a PCI address, 0000:01:10.0');
const Key = z.string().describe('a device key, pci:0000:01:10.0');
const Addresses = z.array(Address);
const Hex = z.string().nullable();

export const Owner = z
  .strictObject({
    driver: z.string().describe('the hypervisor driver, as libvirt names it (same value as hypervisor)'),
    domain: z.string().describe('the domain (same value as vm)'),
    hypervisor: z.string(),
    vm: z.string(),
  })
  .describe('who holds a device: hypervisor and vm, with driver and domain kept as the first JSON contract');
const Table = z.enum(['active', 'inactive']);
const Hardware = z.strictObject({
  vendor: z.string().nullable(),
  device: z.string().nullable(),
  subsystemVendor: z.string().nullable(),
  subsystemDevice: z.string().nullable(),
  class: z.string().nullable(),
  serialNumber: z.string().nullable(),
  vpd: z
    .strictObject({
      productName: z.string().nullable(),
      partNumber: z.string().nullable(),
      serialNumber: z.string().nullable(),
      engineeringChange: z.string().nullable(),
      manufacturer: z.string().nullable(),
    })
    .nullable(),
});

const ActiveEntry = z.strictObject({
  key: Key,
  address: Address,
  usedBy: Owner,
  managed: z.boolean(),
  stubDriver: z.string(),
  originalDriver: z.string().nullable(),
  bootId: z.string().nullable().optional().describe('the boot (boot_id) the entry was made in'),
  hardware: Hardware.nullable().optional().describe('the device the entry was made for: IDs, serials, VPD'),
});
const InactiveEntry = z.strictObject({
  key: Key,
  address: Address,
  managed: z.boolean(),
  stubDriver: z.string(),
  originalDriver: z.string().nullable(),
  bootId: z.string().nullable().optional().describe('the boot (boot_id) the entry was made in'),
  hardware: Hardware.nullable().optional().describe('the device the entry was made for: IDs, serials, VPD'),
});
const TableChange = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('set-active'), entry: ActiveEntry }),
  z.strictObject({ kind: z.literal('set-inactive'), entry: InactiveEntry }),
  z.strictObject({ kind: z.literal('remove'), key: Key, address: Address }),
]);

const deviceFields = {
  key: Key,
  address: Address,
  vendor: Hex,
  device: Hex,
  subsystemVendor: Hex,
  subsystemDevice: Hex,
  class: Hex.describe('base class and subclass, 4 hex digits'),
  progIf: Hex,
  revision: Hex,
  vendorName: z.string().nullable(),
  deviceName: z.string().nullable(),
  driver: z.string().nullable(),
  driverOverride: z.string().nullable(),
  iommuGroup: z.number().int().nullable(),
  numaNode: z.number().int().nullable(),
  headerType: z.enum(['endpoint', 'bridge', 'cardbus']).nullable(),
  parent: Address.nullable(),
  physfn: Address.nullable(),
  virtfns: Addresses,
  sriov: z.strictObject({ totalVfs: z.number().int(), numVfs: z.number().int() }).nullable(),
  netdevs: z.array(z.string()),
  resetMethods: z.array(z.string()),
  flr: z.boolean().nullable(),
};
const ownership = {
  owner: Owner.nullable().optional().describe('absent when the state directory cannot be read'),
  table: Table.nullable().optional(),
};
const Device = z.strictObject({ ...deviceFields, ...ownership }).describe('one PCI function (hostdev list --json)');

const HostUse = z.strictObject({ kind: z.enum(['address', 'route', 'mount', 'console']), detail: z.string() });
const Verdict = z.strictObject({
  address: Address,
  group: z.number().int().nullable(),
  assignable: z.boolean(),
  alone: z.boolean(),
  companions: Addresses,
  bridges: Addresses,
  problems: z.array(z.strictObject({ code: z.string(), message: z.string(), hint: z.string().nullable(), member: Address.nullable() })),
});
/** A member of an IOMMU group (show's groupMembers; groups adds the ids and the owner). */
const memberFields = {
  key: Key,
  address: Address,
  driver: z.string().nullable(),
  class: Hex,
  headerType: deviceFields.headerType,
  vendorName: z.string().nullable(),
  deviceName: z.string().nullable(),
};
const ShowReport = z.strictObject({
  ...deviceFields,
  ...ownership,
  pciPath: z.array(z.string()),
  groupMembers: z.array(z.strictObject(memberFields)),
  verdict: Verdict,
  modalias: z.string().nullable(),
  vfioStub: z.strictObject({ driver: z.string(), modulesAlias: z.string().nullable() }).nullable(),
  hostUse: z.array(HostUse),
  serialNumber: z.string().nullable().describe('PCIe Device Serial Number, as lspci prints it'),
  vpd: Hardware.shape.vpd.describe('Vital Product Data: identifier string, PN, SN, EC, MN'),
});
const GroupReport = z.strictObject({
  group: z.number().int(),
  members: z.array(z.strictObject({ ...memberFields, vendor: Hex, device: Hex, ...ownership })),
});

const InFlight = z.strictObject({
  id: z.string(),
  operation: z.string(),
  pid: z.number().int(),
  running: z.boolean(),
  addresses: Addresses,
  since: z.string(),
});
const Recovery = z.strictObject({
  dryRun: z.boolean().optional(),
  deferred: z.array(InFlight).optional(),
  repaired: z.array(
    z.strictObject({
      address: Address,
      operation: z.string(),
      direction: z.enum(['rolled-back', 'rolled-forward']),
      outcome: z.enum(['ok', 'failed']),
      driver: z.string().nullable(),
      table: Table.nullable(),
      error: z.string().nullable(),
      steps: z.array(z.string()).optional(),
    }),
  ),
  pruned: z.array(z.strictObject({ address: Address, table: Table, usedBy: Owner.nullable() })),
  drift: z.array(z.strictObject({ address: Address, table: Table, usedBy: Owner.nullable(), expectedDriver: z.string(), actualDriver: z.string().nullable() })),
  vfConfig: z.array(z.strictObject({ address: Address, outcome: z.enum(['restored', 'dropped', 'pending']), reason: z.string().nullable() })),
  rebooted: z
    .array(
      z.strictObject({
        key: Key,
        address: Address,
        formerTable: Table,
        formerOwner: Owner.nullable(),
        action: z.enum(['released', 'reapplied', 'reattached', 'not-reapplied']),
        outcome: z.enum(['ok', 'failed']),
        driver: z.string().nullable(),
        table: Table.nullable(),
        error: z.string().nullable(),
        steps: z.array(z.string()).optional(),
      }),
    )
    .optional()
    .describe('entries of an earlier boot, released or re-applied by the first open after a reboot'),
  devices: z
    .array(
      z.strictObject({
        key: Key,
        operation: z.enum(['mdev-create', 'mdev-remove']),
        direction: z.enum(['rolled-back', 'rolled-forward']),
        outcome: z.enum(['ok', 'failed']),
        error: z.string().nullable(),
        steps: z.array(z.string()).optional(),
      }),
    )
    .optional()
    .describe('mdev creates and removes a hostdev that died left in the journal, settled from what the host shows'),
  warnings: z.array(z.string()),
});
const Holder = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('pid'), pid: z.number().int(), startTime: z.string().describe('field 22 of /proc/PID/stat') }),
  z.strictObject({ kind: z.literal('qmp'), socket: z.string() }),
]);
export const HolderStatus = z
  .strictObject({
    owner: Owner,
    holder: Holder,
    since: z.string(),
    alive: z.boolean().nullable(),
    reason: z.string(),
    startTimeUnknown: z.literal(true).optional().describe('a live pid holder /proc does not show (hidepid=2): its start time cannot be checked'),
  })
  .describe("a domain's holder and whether it lives (null: it did not answer in time)");
/** An entry of another kind than PCI (mdev, USB, NVMe, SCSI): ownership only. */
const DeviceEntry = z.strictObject({
  key: z.string(),
  kind: z.enum(['mdev', 'usb', 'nvme', 'scsi']),
  usedBy: Owner.describe('the domain that took it first'),
  identity: z.record(z.string(), z.unknown()).nullable().describe('what recognises the device when it is seen again (USB vendor:product, mdev parent and type, SCSI sg node, vendor and model)'),
  shareable: z.literal(true).optional().describe("a SCSI device taken shareable (libvirt's <shareable/>)"),
  sharedBy: z.array(Owner).optional().describe('the other domains that hold a shareable SCSI device'),
});
const DeviceReleaseReport = z
  .strictObject({
    operation: z.literal('release'),
    dryRun: z.boolean(),
    owner: Owner,
    released: z.array(z.string()),
    pruned: z.array(z.string()),
    notes: z.array(z.string()),
  })
  .describe('the mediated and USB devices a release without devices gave back');
const Status = z.strictObject({
  active: z.array(ActiveEntry),
  inactive: z.array(InactiveEntry),
  pruned: Addresses,
  missing: Addresses,
  iommu: z.strictObject({ enabled: z.boolean() }),
  vfio: z.strictObject({ loaded: z.boolean(), groups: z.array(z.string()) }),
  journal: z.strictObject({ unfinished: z.number().int() }),
  recovery: Recovery,
  recentRepairs: z.array(z.strictObject({ at: z.string(), by: z.string(), report: Recovery })),
  departed: z.array(z.record(z.string(), z.unknown()).describe('a VF that left the host while a table held it (address, former entry, owner, awaited, back)')),
  busy: z.strictObject({ operations: z.array(InFlight), notPruned: Addresses }).nullable(),
  holders: z.array(HolderStatus),
  devices: z.array(DeviceEntry).optional().describe('mediated and USB devices held by domains (present only when there are any)'),
  prunedDevices: z.array(z.strictObject({ key: z.string(), usedBy: Owner, awaited: z.boolean() })).optional(),
  departedDevices: z
    .array(z.strictObject({ entry: DeviceEntry, prunedBy: z.string(), departedAt: z.string(), back: z.boolean() }))
    .optional()
    .describe('mediated and USB devices that left the host while a domain held them'),
  hardwareChanged: z
    .array(z.strictObject({ key: Key, address: Address, table: Table, owner: Owner.nullable(), was: Hardware, now: Hardware, message: z.string() }))
    .optional()
    .describe('entries whose device is not the card they were made for (assign, release, detach, reattach refuse them without force)'),
});

const operationReportFields = {
  operation: z.enum(['detach', 'reattach', 'reset', 'assign', 'release', 'adopt']),
  dryRun: z.boolean(),
  steps: z.array(z.string()).describe('the plan, in order: writes, module loads and read-back checks'),
  changes: z.array(TableChange),
  pruned: Addresses,
  resets: z.array(z.strictObject({ address: Address, method: z.string() })),
  failures: z.array(z.strictObject({ address: Address, phase: z.enum(['detach', 'reset', 'reattach']), code: z.string(), message: z.string() })),
  notes: z.array(z.string()),
  recovery: Recovery.optional().describe('dry runs: what recovery at open would do first'),
  writes: z.array(z.strictObject({ path: z.string(), value: z.string() })),
  checks: z
    .array(
      z.discriminatedUnion('kind', [
        z.strictObject({ kind: z.literal('verify-driver'), address: Address, expected: z.string().nullable() }),
        z.strictObject({ kind: z.literal('verify-host-driver'), address: Address, bound: z.boolean() }),
      ]),
    )
    .describe('the read-back checks of the plan: the driver each device must be on afterwards'),
};
const OperationReport = z.strictObject(operationReportFields).describe('detach, reattach, reset');
const DeviceAssignReport = z
  .strictObject({ operation: z.literal('assign'), dryRun: z.boolean(), owner: Owner, assigned: z.array(z.string()), notes: z.array(z.string()) })
  .describe('the mediated and USB devices of the assign');
const AssignReport = z
  .strictObject({ ...operationReportFields, vfConfig: z.array(z.string()), warnings: z.array(z.string()), devices: DeviceAssignReport.optional() })
  .describe('assign');
const ReleaseReport = z
  .strictObject({
    ...operationReportFields,
    released: Addresses,
    reattached: Addresses,
    inactive: Addresses,
    warnings: z.array(z.string()),
    devices: DeviceReleaseReport.optional(),
  })
  .describe('release');
const SetCountReport = z
  .strictObject({
    pf: Address,
    from: z.number().int(),
    to: z.number().int(),
    dryRun: z.boolean(),
    steps: z.array(z.string()),
    pruned: z.array(z.strictObject({ address: Address, vfIndex: z.number().int(), table: Table, owner: Owner.nullable() })),
    stubbed: Addresses,
    vfs: z.array(z.strictObject({ address: Address, driver: z.string().nullable() })),
    waitedMs: z.number(),
    recovery: Recovery.optional(),
  })
  .describe('sriov (vf set-count)');
const Settled = z.strictObject({ recovered: z.array(z.unknown()) }).describe('an operation a stopped daemon left, finished by recovery');
/** An operation's result: the report as the CLI's --json prints it. */
const Placement = z.strictObject({ address: Address, id: z.string(), bus: z.string().nullable() });
const HotplugReport = z
  .strictObject({ domain: z.string(), hypervisor: z.string(), dryRun: z.boolean(), assign: AssignReport.nullable(), plugged: z.array(Placement), present: Addresses })
  .describe('hotplug');
const UnplugReport = z.strictObject({ unplugged: Addresses, absent: Addresses, release: ReleaseReport }).describe('unplug');
const SysfsWrite = z.strictObject({ path: z.string(), value: z.string() });

export const MdevAttribute = z.strictObject({
  name: z.string().min(1).max(255).describe("a file of the mdev's own directory (no '/')"),
  value: z.string().max(4096),
});

export const MdevCreateBody = z.strictObject({
  parent: z.string().min(1).max(255).describe("the parent: a PCI address or a virtual parent's name (mtty)"),
  type: z.string().min(1).max(255).describe('the type, by its id (i915-GVTg_V5_4) or name'),
  uuid: z.string().optional().describe('the UUID to give it (default: a random one, named in the operation record)'),
  attrs: z.array(MdevAttribute).max(64).optional().describe('written in order once the mdev is made; one refused removes the mdev again'),
  persist: z.boolean().optional().describe("also write its definition (mdevctl define), made again at boot by `mdev start-defined`"),
  start: z.enum(['auto', 'manual']).optional().describe('with persist: "manual" definitions are not made at boot'),
});

export const MdevRemoveQuery = MutationQuery.extend({
  undefine: flag.optional().describe('also drop its definition'),
});

export const MdevReport = z
  .strictObject({
    operation: z.enum(['mdev-create', 'mdev-remove']),
    dryRun: z.boolean(),
    key: z.string(),
    uuid: z.string(),
    parent: z.string().nullable(),
    type: z.string().nullable(),
    write: SysfsWrite.describe('the write of the type\'s create file, or of the mdev\'s remove file'),
    attributes: z.array(SysfsWrite).describe('the attribute writes that follow a create, in order'),
    definition: z.string().nullable().describe('the definition file written (persist) or dropped (undefine)'),
  })
  .describe('`hostdev mdev create|remove --json`');

const OperationResult = z.union([AssignReport, ReleaseReport, OperationReport, SetCountReport, Settled, HotplugReport, UnplugReport, MdevReport]);

export const OperationState = z.enum(['running', 'completed', 'failed']);

export const OperationRecord = z
  .strictObject({
    id: z.string().nullable().describe('the journal id of the operation (null for a dry run)'),
    kind: z.enum(Object.values(WIRE_KINDS)).describe('the operation: detach, reattach, reset, assign, release, sriov (vf set-count), adopt, hotplug, unplug, mdev-create, mdev-remove'),
    state: OperationState,
    dryRun: z.boolean(),
    owner: Owner.nullable(),
    devices: z.array(z.string()).describe('device keys'),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
    result: OperationResult.nullable().describe("the report, as the CLI's --json prints it (null while running or on failure)"),
    warnings: z.array(z.string()),
    error: ErrorBody.shape.error.nullable(),
    noop: z.boolean().describe('true: the same assign by the same owner had already been done'),
  })
  .describe('a mutation');

export const EventRecord = z.strictObject({
  seq: z.number().int(),
  time: z.string(),
  type: z.enum(['pci', 'prune', 'returned', 'operation', 'recovery', 'holder', 'qmp', 'heartbeat']),
  action: z.string(),
  key: z.string().nullable(),
  owner: Owner.nullable(),
  details: z.record(z.string(), z.unknown()),
});

export const ApiIndex = z.strictObject({
  name: z.literal('hostdev'),
  apiVersion: z.string(),
  api_extensions: z.array(z.string()),
  readOnly: z.boolean().describe('true on hostdev-ro.sock'),
  serves: z
    .strictObject({ root: z.string(), stateDir: z.string(), simulate: z.boolean() })
    .describe('the host this daemon works on (absolute paths): the command line goes through the daemon only when they equal its own'),
});

export const Responses = {
  devices: z.array(Device).describe('`hostdev list --json`: the array of PCI functions'),
  device: z
    .union([
      ShowReport,
      z
        .strictObject({
          device: z.looseObject({ kind: z.enum(['mdev', 'usb', 'nvme', 'scsi']), key: z.string() }).describe('as `hostdev list --kind KIND --json` prints it'),
          mdevType: z.record(z.string(), z.unknown()).nullable(),
        })
        .describe('a device of another kind than PCI'),
    ])
    .describe('`hostdev show KEY --json`'),
  groups: z.array(GroupReport).describe('`hostdev groups --json`'),
  status: Status.describe('`hostdev status --json`'),
  qemuArgs: z.array(z.string()).describe('`hostdev qemu-args --json`: the argv array'),
  domains: z
    .array(
      z.strictObject({
        hypervisor: z.string(),
        domain: z.string(),
        devices: z.array(z.strictObject({ key: z.string(), address: Address })).describe('its PCI functions'),
        otherKeys: z.array(z.string()).optional().describe('its mediated, USB, NVMe and SCSI devices (present only when it holds any)'),
        holder: HolderStatus.nullable(),
      }),
    )
    .describe('`hostdev domains --json`: the domains that hold devices, with their holders'),
  operations: z.array(OperationRecord).describe('operations, newest first'),
  mdevs: z
    .strictObject({
      devices: z.array(z.looseObject({ kind: z.literal('mdev'), key: z.string() })).describe('as `hostdev list --kind mdev --json` prints them'),
      parents: z.array(z.looseObject({ name: z.string(), types: z.array(z.looseObject({ id: z.string() })) })).describe('the parents and the types each offers'),
      definitions: z
        .array(
          z.strictObject({
            uuid: z.string(),
            parent: z.string(),
            type: z.string(),
            start: z.enum(['auto', 'manual']),
            attrs: z.array(MdevAttribute),
            present: z.boolean().describe('the mdev is on the host now'),
          }),
        )
        .describe('the definitions (mdevctl list --defined)'),
    })
    .describe('`hostdev mdev list --json`'),
};

/** The named schemas of docs/openapi.json (components.schemas): each is written once and referenced. */
export const COMPONENTS: Readonly<Record<string, z.ZodType>> = {
  Owner,
  ActiveEntry,
  InactiveEntry,
  TableChange,
  Recovery,
  Device,
  Devices: Responses.devices,
  Show: Responses.device,
  Groups: Responses.groups,
  Status: Responses.status,
  QemuArgs: Responses.qemuArgs,
  Domains: Responses.domains,
  OperationReport,
  AssignReport,
  ReleaseReport,
  SetCountReport,
  MdevReport,
  Mdevs: Responses.mdevs,
  Operation: OperationRecord,
  Operations: Responses.operations,
  Event: EventRecord,
  ApiIndex,
  Error: ErrorBody,
};

/** `result` is the report the service handed back, checked against OperationResult by the tests, not at run time. */
export type OperationRecordJson = Omit<z.infer<typeof OperationRecord>, 'result'> & { readonly result: unknown };
export type EventJson = z.infer<typeof EventRecord>;
export type ErrorJson = z.infer<typeof ErrorBody>;
