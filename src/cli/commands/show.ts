import { NO_SERIALS } from '../../core/hardware-identity.js';
import { readPcieLinks, readSerials } from '../../sysfs/serials.js';
import type { Command } from 'commander';
import { keyKind, parseKey, parsePciRef } from '../../core/device-key.js';
import type { NonPciKind } from '../../core/nonpci-device.js';
import { nonPciShowReport } from '../../manager/nonpci-reports.js';
import { nonPciShowText, readNonPci } from '../nonpci-view.js';
import { HostdevError } from '../../core/errors.js';
import { SysfsLayout } from '../../sysfs/paths.js';
import { findDevice, groupMembers, type AssignmentVerdict } from '../../core/iommu.js';
import { cachedPciIds } from '../../sysfs/pci-ids.js';
import { DEFAULT_STUB_DRIVER } from '../../core/stub-driver.js';
import { readVfioAliases } from '../../host/modules-alias.js';
import { showReport, type ShowReport } from '../../manager/inventory-reports.js';
import type { CommandResult } from '../context.js';
import {
  deviceLabel,
  idPair,
  iommuOffNote,
  tablesFor,
  pciIdsPath,
  readHost,
  type InventoryCommandOptions,
} from '../inventory-view.js';
import { ownerCell } from '../../core/tables.js';
import { orDash, renderTable } from '../render.js';
import { hostUsageFor } from '../host-usage-for.js';
import { action } from '../run-action.js';

function verdictLine(verdict: AssignmentVerdict): string {
  if (!verdict.assignable) return `no: ${verdict.problems.map((p) => p.message).join('; ')}`;
  if (verdict.alone) return 'yes, alone: no other endpoint shares its IOMMU group';
  return `yes, but ${verdict.companions.join(', ')} must stay off the host with it (same IOMMU group)`;
}

function stubLine(stub: NonNullable<ShowReport['vfioStub']>): string {
  if (stub.modulesAlias === null) return `${stub.driver} (no modules.alias for this kernel)`;
  return stub.driver === DEFAULT_STUB_DRIVER ? `${stub.driver} (no vfio-pci variant driver in modules.alias)` : `${stub.driver} (vfio-pci variant driver, from modules.alias)`;
}

export function showCommand(options: InventoryCommandOptions = {}): (program: Command) => void {
  return (program) => {
    program
      .command('show')
      .description('one device in full: PCI path, IOMMU group members and whether it can be given to a VM alone')
      .argument('<address>', 'PCI address (0000:01:00.2, 01:00.2, pci_0000_01_00_2) or device key (pci:0000:01:00.2, mdev:UUID, usb:1-1.2, nvme:0000:03:00.0/1, scsi:2:0:0:0)')
      .option('--xml', "print the device as `virsh nodedev-dumpxml` does (libvirt's node device XML)")
      .action(
        action(async (globals, command: Command, input: string): Promise<CommandResult> => {
          const key = parseKey(input);
          const kind = keyKind(key);
          const { xml } = command.opts<{ xml?: boolean }>();
          if (xml && globals.json) {
            throw new HostdevError('HOSTDEV_USAGE', '--xml and --json cannot be used together', { hint: 'Pick one: --xml prints libvirt node device XML, --json hostdev\'s report.' });
          }
          if (kind !== 'pci') {
            const tablesLoading = tablesFor(globals, options);
            const nonPci = await readNonPci(globals, [kind as NonPciKind]);
            const tables = await tablesLoading;
            const report = nonPciShowReport(nonPci, key, tables);
            if (xml) {
              const { nonPciNodedevXml } = await import('../nodedev-xml.js'); // its XML library only for --xml
              return { json: null, text: await nonPciNodedevXml(new SysfsLayout(globals.root), report.device), warnings: nonPci.warnings };
            }
            return { json: report, text: nonPciShowText(report, tables), warnings: nonPci.warnings };
          }
          const address = parsePciRef(input);
          const tablesLoading = tablesFor(globals, options);
          const { layout, inventory, warnings } = await readHost(globals, address);
          const tables = await tablesLoading;
          const found = findDevice(inventory, address);
          const [hostUse, serials] = await Promise.all([
            found === null ? [] : hostUsageFor(globals).then(async (usage) => (await usage.usesOf([found])).get(address) ?? []),
            found === null ? NO_SERIALS : readSerials(layout, address),
          ]);
          const json = showReport(inventory, address, tables, readVfioAliases(layout.root), hostUse, serials);
          const device = findDevice(inventory, address)!;
          const { verdict, pciPath: path, vfioStub: stub } = json;
          const members = groupMembers(inventory, address);
          const relevant = warnings.filter((w) => w.startsWith(address) || !/^[0-9a-f]{4}:/.test(w));
          if (globals.json) return { json, text: '', warnings: relevant };
          if (xml) {
            const { pciNodedevXml } = await import('../nodedev-xml.js'); // its XML library only for --xml
            return { json: null, text: await pciNodedevXml(layout, inventory, device, await readPcieLinks(layout, address)), warnings: relevant };
          }

          const className = device.class === null ? null : (cachedPciIds(pciIdsPath())?.className(device.class) ?? null);
          const rev = device.revision !== null && device.revision !== '00' ? ` (rev ${device.revision})` : '';
          const lines = [
            `${address} ${className ?? 'Class'} [${orDash(device.class)}]: ${deviceLabel(device)} [${idPair(device)}]${rev}`,
          ];
          const facts: Array<[string, string]> = [
            ['Subsystem', `${orDash(device.subsystemVendor)}:${orDash(device.subsystemDevice)}`],
            ['Driver', device.driverOverride ? `${orDash(device.driver)} (driver_override ${device.driverOverride})` : orDash(device.driver)],
            ['Header type', orDash(device.headerType)],
            ['PCI path', path.join(' > ')],
            ['NUMA node', orDash(device.numaNode)],
            ['Reset', `${device.resetMethods.length > 0 ? device.resetMethods.join(' ') : 'none'}; FLR ${device.flr === null ? 'unknown' : device.flr ? 'yes' : 'no'}`],
          ];
          if (device.sriov) {
            const vfs = device.virtfns.length > 0 ? `: ${device.virtfns.join(' ')}` : '';
            facts.push(['SR-IOV', `PF, ${device.sriov.numVfs} of ${device.sriov.totalVfs} VFs enabled${vfs}`]);
          }
          if (device.physfn) facts.push(['SR-IOV', `VF of ${device.physfn}`]);
          if (device.netdevs.length > 0) facts.push(['Network', device.netdevs.join(' ')]);
          if (json.serialNumber !== null) facts.push(['Serial number', json.serialNumber]);
          if (json.vpd !== null) {
            const vpd = json.vpd;
            const fields: Array<[string, string | null]> = [
              ['Product name', vpd.productName],
              ['Part number', vpd.partNumber],
              ['Serial', vpd.serialNumber],
              ['EC', vpd.engineeringChange],
              ['MN', vpd.manufacturer],
            ];
            facts.push(['VPD', fields.flatMap(([label, value]) => (value === null ? [] : [`${label}: ${value}`])).join('; ') || 'present, no fields']);
          }
          if (tables) facts.push(['Owner', ownerCell(tables(address))]);
          facts.push(['Host use', hostUse.length === 0 ? 'none' : `${hostUse.map((use) => use.detail).join('; ')} (detach refuses it without --force)`]);
          facts.push(['IOMMU group', orDash(device.iommuGroup)]);
          if (stub !== null) facts.push(['Stub driver', stubLine(stub)]);
          const width = Math.max(...facts.map(([label]) => label.length));
          for (const [label, value] of facts) lines.push(`  ${label.padEnd(width)}  ${value}`);

          if (members.length > 0) {
            const rows = members.map((m) => [
              m.address === address ? `${m.address}*` : m.address,
              orDash(m.headerType),
              orDash(m.driver),
              deviceLabel(m),
            ]);
            lines.push('', renderTable(['MEMBER', 'TYPE', 'DRIVER', 'NAME'], rows).replace(/^/gm, '  '));
          }
          lines.push('', `Can be given to a VM alone: ${verdictLine(verdict)}`);
          for (const p of verdict.problems) if (p.hint) lines.push(`  hint: ${p.hint}`);
          if (!inventory.iommuEnabled) lines.push('', iommuOffNote(layout));
          return { json, text: lines.join('\n'), warnings: relevant };
        }),
      );
  };
}
