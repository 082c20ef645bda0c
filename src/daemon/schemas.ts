import { z } from 'zod';

/**
 * The API's request and response shapes. Requests are checked with these schemas; the OpenAPI
 * document (docs/openapi.json) is generated from them, so the two cannot drift apart.
 */

export const API_VERSION = '1.0';
/** Features added to /v1 after its first release; a client checks for one before it uses it. */
export const API_EXTENSIONS = ['operations', 'events-ndjson', 'events-sse', 'dry-run', 'metrics'] as const;

const flag = z
  .enum(['true', 'false', '1', '0'])
  .transform((value) => value === 'true' || value === '1')
  .describe('true or false');
const millis = z.coerce.number().int().min(0).max(3_600_000);

export const DeviceKey = z
  .string()
  .describe('a PCI function: pci:0000:01:10.0, or a bare address (0000:01:10.0, 01:10.0, pci_0000_01_10_0)');

export const ListQuery = z.object({
  class: z.string().optional().describe('net, storage, display, bridge, ... or a hex class code (02, 0200)'),
  driver: z.string().optional().describe('only devices bound to this driver'),
});

export const MutationQuery = z.object({
  dryRun: flag.optional().describe('return the plan (the ordered sysfs writes and table changes); change nothing'),
  wait: millis.optional().describe('how long to wait for the operation (ms, default 30000) before answering 202'),
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
  devices: z.array(DeviceKey).min(1).describe('all or nothing'),
  managed: z.boolean().optional().describe('default true: hostdev detaches the devices itself'),
  withGroup: z.boolean().optional().describe("take every endpoint of the devices' IOMMU groups along"),
  driver: z.string().optional().describe('stub driver for managed devices'),
  force: z.boolean().optional().describe('assign even if the host uses a device'),
  vf: z.record(z.string(), VfOptions).optional().describe('VF network config by device key'),
  waitMs: z.number().int().min(0).optional().describe('longest wait for device reads the kernel holds (default 15000)'),
});

export const ReleaseQuery = MutationQuery.extend({
  devices: z.string().optional().describe('comma-separated device keys (default: every device of the domain)'),
});

export const QemuArgsQuery = z.object({
  machine: z.enum(['q35', 'pc']).optional(),
  firstChassis: z.coerce.number().int().min(0).optional(),
});

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().describe('a code of the error catalog (README: Error codes)'),
      message: z.string(),
      hint: z.string().nullable(),
      details: z.record(z.string(), z.unknown()),
    }),
  })
  .describe('every error; the HTTP status follows the code\'s exit class');

const Owner = z.object({ driver: z.string(), domain: z.string() });

export const OperationState = z.enum(['running', 'completed', 'failed']);

export const OperationRecord = z
  .object({
    id: z.string().nullable().describe('the journal id of the operation (null for a dry run)'),
    kind: z.string().describe('detach, reattach, reset, assign, release, sriov'),
    state: OperationState,
    dryRun: z.boolean(),
    owner: Owner.nullable(),
    devices: z.array(z.string()).describe('device keys'),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
    result: z.unknown().describe("the report, as the CLI's --json prints it (null while running or on failure)"),
    warnings: z.array(z.string()),
    error: ErrorBody.shape.error.nullable(),
    noop: z.boolean().describe('true: the same assign by the same owner had already been done'),
  })
  .describe('a mutation');

export const EventRecord = z.object({
  seq: z.number().int(),
  time: z.string(),
  type: z.enum(['pci', 'prune', 'returned', 'operation', 'recovery', 'heartbeat']),
  action: z.string(),
  key: z.string().nullable(),
  owner: Owner.nullable(),
  details: z.record(z.string(), z.unknown()),
});

export const ApiIndex = z.object({
  name: z.literal('hostdev'),
  apiVersion: z.string(),
  api_extensions: z.array(z.string()),
  readOnly: z.boolean().describe('true on hostdev-ro.sock'),
});

const Report = (what: string) => z.unknown().describe(`${what}, exactly as the CLI's --json prints it`);
export const Responses = {
  devices: Report('`hostdev list --json`: the array of PCI functions'),
  device: Report('`hostdev show --json`'),
  groups: Report('`hostdev groups --json`'),
  status: Report('`hostdev status --json`'),
  qemuArgs: Report('`hostdev qemu-args --json`: the argv array'),
};

export type OperationRecordJson = z.infer<typeof OperationRecord>;
export type EventJson = z.infer<typeof EventRecord>;
export type ErrorJson = z.infer<typeof ErrorBody>;
