import type { VmSlots } from '../core/hotplug.js';
import type { QmpPort } from './qmp-client.js';

interface QomProperty {
  readonly name: string;
  readonly type: string;
}

const ROOT_PORT_TYPES = new Set(['child<pcie-root-port>', 'child<ioh3420>']);
const PERIPHERALS = '/machine/peripheral';

/**
 * The VM's machine type, its named root ports with whether a device sits behind each, and the ids
 * of its devices, read through QOM: unlike `query-pci`, QOM answers before the guest's firmware has
 * numbered the buses. Root ports without an id are passed over: their buses have generated names
 * that can repeat the root complex's (`pcie.0`), so `device_add` could not name them.
 */
export async function readVmSlots(qmp: QmpPort): Promise<VmSlots> {
  const type = await qmp.execute<string>('qom-get', { path: '/machine', property: 'type' });
  const peripherals = await qmp.execute<QomProperty[]>('qom-list', { path: PERIPHERALS });
  const deviceIds = new Set(peripherals.filter((child) => child.type.startsWith('child<')).map((child) => child.name));
  const rootPorts: { id: string; occupied: boolean }[] = [];
  for (const port of peripherals.filter((child) => ROOT_PORT_TYPES.has(child.type))) {
    const children = await qmp.execute<QomProperty[]>('qom-list', { path: `${PERIPHERALS}/${port.name}` });
    const bus = children.find((child) => child.type === 'child<PCIE>' || child.type === 'child<PCI>');
    if (bus === undefined) continue;
    const onBus = await qmp.execute<QomProperty[]>('qom-list', { path: `${PERIPHERALS}/${port.name}/${bus.name}` });
    rootPorts.push({ id: bus.name, occupied: onBus.some((child) => child.name.startsWith('child[')) });
  }
  return { machine: type.includes('q35') ? 'q35' : 'pc', rootPorts, deviceIds };
}
