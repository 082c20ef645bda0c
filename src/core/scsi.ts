import { deviceArgument, guestDevice } from './guest-device.js';
import type { ScsiDevice } from './nonpci-device.js';

/*
 * A SCSI generic device on QEMU's command line, as libvirt gives a <hostdev type='scsi'> to QEMU
 * (qemuBuildHostdevSCSICommandLine with -blockdev): the /dev/sgN node as a host_device block node,
 * and a scsi-generic device on a SCSI controller that uses it. hostdev adds the controller
 * (virtio-scsi, libvirt's default model) and numbers the devices on it as libvirt's drive
 * addresses do: target 0, one LUN each.
 */

export const HOSTDEV_SCSI_CONTROLLER_ID = 'hostdev-scsi';

/** The controller, then per device its -blockdev and -device; devices without a generic node are left out by the caller. */
export function scsiQemuArgs(
  devices: readonly (Pick<ScsiDevice, 'host' | 'bus' | 'target' | 'lun'> & { readonly sg: string; readonly readOnly?: boolean })[],
): string[] {
  if (devices.length === 0) return [];
  const sorted = [...devices].sort((a, b) => a.host - b.host || a.bus - b.bus || a.target - b.target || a.lun - b.lun);
  return [
    '-device',
    `virtio-scsi-pci,id=${HOSTDEV_SCSI_CONTROLLER_ID}`,
    ...sorted.flatMap((device, lun) => {
      const guest = guestDevice({ kind: 'scsi', ...device });
      return ['-blockdev', JSON.stringify(guest.blockdev), '-device', deviceArgument(guest.props({ bus: `${HOSTDEV_SCSI_CONTROLLER_ID}.0`, channel: 0, scsiId: 0, lun }))];
    }),
  ];
}
