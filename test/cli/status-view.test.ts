import { describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { pciKey, type DeviceKey } from '../../src/core/device-key.js';
import type { DeviceEntry } from '../../src/core/device-entry.js';
import { statusText } from '../../src/cli/status-view.js';
import { EMPTY_RECOVERY_REPORT } from '../../src/manager/recovery.js';
import type { StatusReport } from '../../src/manager/status.js';

const pci = (text: string): PciAddress => text as PciAddress;
const A = pci('0000:01:10.0');
const B = pci('0000:01:10.1');
const C = pci('0000:01:10.3');
const D = pci('0000:02:00.0');

const base: StatusReport = {
  active: [{ key: pciKey(A), address: A, usedBy: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, managed: true, stubDriver: 'vfio-pci', originalDriver: 'igbvf' }],
  inactive: [{ key: pciKey(B), address: B, managed: false, stubDriver: 'vfio-pci', originalDriver: 'igbvf' }],
  pruned: [],
  missing: [],
  iommu: { enabled: true },
  vfio: { loaded: true, groups: [] },
  journal: { unfinished: 0 },
  recovery: EMPTY_RECOVERY_REPORT,
  recentRepairs: [],
  departed: [],
  busy: null,
  holders: [],
};

describe('status text: the heading of the devices of other kinds names the kinds there are', () => {
  const owner = { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' };
  const entry = (key: string, kind: DeviceEntry['kind']): DeviceEntry => ({ key: key as DeviceKey, kind, usedBy: owner, identity: null });
  const heading = (devices: DeviceEntry[]): string | undefined =>
    statusText({ ...base, devices, prunedDevices: [], departedDevices: [] }).split('\n').find((line) => line.endsWith(':') && line.includes('devices ('));

  it('mdev and USB as before; SCSI alone, and SCSI with NVMe, by their own names', () => {
    expect(heading([entry('mdev:4b20d080-1b54-4048-85b3-a6a62d165c01', 'mdev'), entry('usb:1-1.2', 'usb')])).toBe('Mediated and USB devices (2), ownership only:');
    expect(heading([entry('scsi:2:0:1:0', 'scsi')])).toBe('SCSI devices (1), ownership only:');
    expect(heading([entry('nvme:0000:01:00.0/1', 'nvme'), entry('scsi:2:0:1:0', 'scsi'), entry('usb:1-1.2', 'usb')])).toBe(
      "USB, NVMe and SCSI devices (3), each namespace's controller in the active table:",
    );
  });
});

describe('status text', () => {
  it('shows only the tables when nothing drifted and nothing was repaired', () => {
    const text = statusText(base);
    expect(text).not.toMatch(/Drift|Repaired/);
    expect(text).toContain('0000:01:10.0  qemu/vm1  managed  vfio-pci  igbvf');
  });

  it('names each drifting device with expected and found driver, owner and the command that settles it', () => {
    const text = statusText({
      ...base,
      recovery: {
        ...EMPTY_RECOVERY_REPORT,
        drift: [
          { key: pciKey(A), address: A, table: 'active', usedBy: { driver: 'xen', domain: 'vm1', hypervisor: 'xen', vm: 'vm1' }, expectedDriver: 'vfio-pci', actualDriver: null },
          { key: pciKey(B), address: B, table: 'inactive', usedBy: null, expectedDriver: 'vfio-pci', actualDriver: 'igbvf' },
        ],
      },
    });
    const lines = text.split('\n');
    const head = lines.findIndex((line) => line.startsWith('Drift (2)'));
    expect(lines[head + 1]).toMatch(/^ADDRESS +TABLE +OWNER +EXPECTED +FOUND +NEXT$/);
    expect(lines[head + 2]).toMatch(/^0000:01:10\.0 +active +xen\/vm1 +vfio-pci +\(none\) +check the VM no longer uses it, then `hostdev release --domain vm1 --hypervisor xen 0000:01:10\.0`$/);
    expect(lines[head + 3]).toMatch(/^0000:01:10\.1 +inactive +hostdev \(detached\) +vfio-pci +igbvf +`hostdev reattach 0000:01:10\.1` \(or detach it again; --force if the host uses it\)$/);
    // aligned: every row's NEXT starts in the header's NEXT column
    const column = lines[head + 1]!.indexOf('NEXT');
    expect(lines[head + 2]!.slice(column)).toMatch(/^check/);
    expect(lines[head + 3]!.slice(column)).toMatch(/^`hostdev reattach/);
  });

  it('lists what recovery repaired at open lately, with when and which command: rolled-back devices, pruned entries, VF config', () => {
    const text = statusText({
      ...base,
      recentRepairs: [
        {
          at: '2026-12-07T13:00:02.000Z',
          by: 'vf list',
          report: {
            ...EMPTY_RECOVERY_REPORT,
            repaired: [
              { key: pciKey(C), address: C, operation: 'assign', direction: 'rolled-back', outcome: 'ok', driver: 'igbvf', table: null, error: null },
              { key: pciKey(B), address: B, operation: 'release', direction: 'rolled-forward', outcome: 'failed', driver: 'vfio-pci', table: 'inactive', error: 'EIO' },
            ],
            vfConfig: [
              { key: pciKey(C), address: C, outcome: 'restored', reason: null },
              { key: pciKey(A), address: A, outcome: 'pending', reason: 'the PF is not online' },
            ],
          },
        },
        {
          at: '2026-12-07T12:00:00.000Z',
          by: 'assign',
          report: { ...EMPTY_RECOVERY_REPORT, pruned: [{ key: pciKey(D), address: D, table: 'active', usedBy: { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' } }] },
        },
      ],
    });
    expect(text).toContain(
      'Repaired at open (5), most recent first: what a hostdev that did not finish left, devices that left the host, saved VF config:',
    );
    expect(text).toMatch(/^WHEN +BY +ADDRESS +REPAIR +OUTCOME +NEXT$/m);
    expect(text).toMatch(/2026-12-07T13:00:02\.000Z +vf list +0000:01:10\.3 +assign left unfinished, rolled-back +on igbvf, in no table +-/);
    expect(text).toMatch(/0000:01:10\.1 +release left unfinished, rolled-forward +FAILED: EIO; on vfio-pci, inactive table +`hostdev reattach 0000:01:10\.1`/);
    expect(text).toMatch(/2026-12-07T12:00:00\.000Z +assign +0000:02:00\.0 +pruned from active +no longer on this host \(owner qemu\/vm2\)/);
    expect(text).toMatch(/0000:01:10\.3 +VF network config +saved MAC\/VLAN put back/);
    expect(text).toMatch(/0000:01:10\.0 +VF network config +PENDING: the PF is not online +bring the PF up; the next command retries/);
  });
});
