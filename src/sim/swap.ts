import fs from 'node:fs';
import path from 'node:path';
import { SysfsLayout } from '../sysfs/paths.js';
import { PCI_EXT_CAP_ID_DSN, findExtCap } from './config-space.js';
import type { VpdSpec } from './spec.js';
import { vpdBytes, within } from './tree-writer.js';

/** What changes when another card is put in a slot: its IDs, its serial, its VPD. */
export interface SwappedCard {
  readonly vendor?: string;
  readonly device?: string;
  /** A new Device Serial Number (only where the card has the capability). */
  readonly serialNumber?: string;
  readonly vpd?: VpdSpec;
}

/**
 * Another card in the slot of a simulated function, as after a hot-swap or a change while the host was
 * off: the same address, other IDs (vendor and device files and config space) or another serial.
 */
export function swapCard(root: string, address: string, card: SwappedCard): void {
  const files = within(root);
  const dir = fs.realpathSync(path.join(new SysfsLayout(root).pciDevicesDir, address));
  const configFile = path.join(dir, 'config');
  const config = fs.readFileSync(configFile);
  if (card.vendor !== undefined) {
    files.writeFile(path.join(dir, 'vendor'), `0x${card.vendor}\n`);
    config.writeUInt16LE(parseInt(card.vendor, 16), 0x00);
  }
  if (card.device !== undefined) {
    files.writeFile(path.join(dir, 'device'), `0x${card.device}\n`);
    config.writeUInt16LE(parseInt(card.device, 16), 0x02);
  }
  if (card.serialNumber !== undefined) {
    const at = findExtCap(config, PCI_EXT_CAP_ID_DSN);
    if (at === null) throw new Error(`${address} has no Device Serial Number capability`);
    Buffer.from(card.serialNumber.split('-').reverse().join(''), 'hex').copy(config, at + 4);
  }
  files.writeFile(configFile, config);
  if (card.vendor !== undefined || card.device !== undefined) {
    // The IDs are in the uevent too (PCI_ID), where readers take them from.
    const uevent = path.join(dir, 'uevent');
    const text = fs.readFileSync(uevent, 'utf8');
    const vendor = config.readUInt16LE(0).toString(16).toUpperCase().padStart(4, '0');
    const device = config.readUInt16LE(2).toString(16).toUpperCase().padStart(4, '0');
    files.writeFile(uevent, text.replace(/^PCI_ID=.*$/m, `PCI_ID=${vendor}:${device}`));
  }
  if (card.vpd !== undefined) files.writeFile(path.join(dir, 'vpd'), vpdBytes(card.vpd));
}
