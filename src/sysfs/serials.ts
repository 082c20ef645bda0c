import path from 'node:path';
import type { PciAddress } from '../core/address.js';
import { deviceSerialNumber, NO_SERIALS, parseVpd, type DeviceSerials } from '../core/hardware-identity.js';
import type { SysfsLayout } from './paths.js';
import { readHeadBytes } from '../platform/bounded-read.js';

/** The most of a `vpd` file read: VPD is at most 32 KiB (15-bit address). */
const VPD_MAX = 32 * 1024;
/** The extended config space ends here (4 KiB). */
const CONFIG_MAX = 4096;
/** A VPD read goes through the device (seconds on some cards, forever on a broken one): bounded. */
const SERIALS_TIMEOUT_MS = 3000;


/**
 * The serials of one function: the Device Serial Number from its config space (past 0x100, which
 * only root reads) and the VPD fields from its `vpd` file. Asynchronous and bounded: whatever cannot
 * be read in time (or at all) is null.
 */
export async function readSerials(layout: SysfsLayout, address: PciAddress, timeoutMs = SERIALS_TIMEOUT_MS): Promise<DeviceSerials> {
  const dir = path.join(layout.pciDevicesDir, address);
  const work = (async (): Promise<DeviceSerials> => {
    const [config, vpd] = await Promise.all([
      readHeadBytes(path.join(dir, 'config'), CONFIG_MAX).catch(() => null),
      readHeadBytes(path.join(dir, 'vpd'), VPD_MAX).catch(() => null),
    ]);
    return {
      serialNumber: config === null ? null : deviceSerialNumber((offset, length) => config.subarray(offset, Math.min(config.length, offset + length))),
      vpd: vpd === null ? null : parseVpd(vpd),
    };
  })();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<DeviceSerials>((resolve) => {
    timer = setTimeout(() => resolve(NO_SERIALS), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
