import type { VmBuses, VmSlots } from '../core/hotplug.js';
import type { ScsiUnit } from '../core/guest-device.js';
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

const USB_CONTROLLER = /^child<(qemu-xhci|nec-usb-xhci|usb-ehci|ich9-usb-[eu]hci\d|piix[34]-usb-uhci)>$/;
const SCSI_CONTROLLER = /^child<(virtio-scsi-pci(-non-transitional|-transitional)?)>$/;
const SCSI_DEVICE = /^child<scsi-(generic|hd|cd|block)>$/;

/**
 * The VM's USB and SCSI controllers that have an id (QEMU names their buses ID.0) and, when SCSI
 * devices are to be plugged, the units its SCSI devices sit on (their bus, channel, scsi-id, lun).
 */
export async function readVmBuses(qmp: QmpPort, scsiUnits: boolean): Promise<VmBuses> {
  const peripherals = await qmp.execute<QomProperty[]>('qom-list', { path: PERIPHERALS });
  const of = (pattern: RegExp) => peripherals.filter((child) => pattern.test(child.type)).map((child) => ({ id: child.name, type: child.type.slice(6, -1) }));
  const units: ScsiUnit[] = [];
  if (scsiUnits) {
    for (const device of peripherals.filter((child) => SCSI_DEVICE.test(child.type))) {
      const get = <T>(property: string) => qmp.execute<T>('qom-get', { path: `${PERIPHERALS}/${device.name}`, property });
      const parent = await get<string>('parent_bus');
      units.push({ bus: parent.slice(parent.lastIndexOf('/') + 1), channel: await get<number>('channel'), scsiId: await get<number>('scsi-id'), lun: await get<number>('lun') });
    }
  }
  return { usb: of(USB_CONTROLLER), scsi: of(SCSI_CONTROLLER), scsiUnits: units };
}
