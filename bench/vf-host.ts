import type { PciAddress } from '../src/core/address.js';
import type { BridgeSpec, EndpointSpec, HostSpec } from '../src/sim/spec.js';
import { vfAddress } from '../src/sim/vf.js';

const VFS_PER_PF = 64;

/** N VFs: one 64-VF PF (82576-like IDs) behind each root port, 16 root ports per PCI domain. */
export function vfHost(vfs: number): { spec: HostSpec; vfs: PciAddress[] } {
  const pfs = Math.ceil(vfs / VFS_PER_PF);
  const roots: Array<{ domain: number; devices: BridgeSpec[] }> = [];
  const addresses: PciAddress[] = [];
  for (let i = 0; i < pfs; i++) {
    const domain = Math.floor(i / 16);
    const port = i % 16;
    if (port === 0) roots.push({ domain, devices: [] });
    const bus = port + 1;
    const pf: EndpointSpec = {
      at: '00.0',
      vendor: '8086',
      device: '10c9',
      class: '020000',
      driver: 'igb',
      flr: true,
      sriov: { totalVfs: VFS_PER_PF, offset: 128, stride: 1, vfDevice: '10ca', vfDriver: 'igbvf', numVfs: VFS_PER_PF },
    };
    roots[roots.length - 1]!.devices.push({
      kind: 'bridge',
      at: `${(1 + Math.floor(port / 8)).toString(16).padStart(2, '0')}.${port % 8}`,
      vendor: '8086',
      device: 'a110',
      port: 'root-port',
      secondaryBus: bus,
      children: [pf],
    });
    const pfAddress = `${domain.toString(16).padStart(4, '0')}:${bus.toString(16).padStart(2, '0')}:00.0`;
    for (let n = 0; n < VFS_PER_PF; n++) addresses.push(vfAddress(pfAddress, 128, 1, n) as PciAddress);
  }
  return { spec: { description: `${vfs} VFs`, drivers: { 'vfio-pci': { loaded: true } }, roots }, vfs: addresses.slice(0, vfs) };
}

