/**
 * Child process that reads the inventory and prints it as JSON on stdout. On a real kernel a
 * sysfs read can block in D state for as long as a VM holds a VF whose removal is pending (a
 * PF's sriov_numvfs, the VF's own files); the blocked read then takes only this process, which
 * the parent abandons. Arguments: ROOT [PCI_IDS_PATH].
 */
import { readInventory } from './inventory.js';
import { SysfsLayout } from './paths.js';

const [root, pciIdsPath] = process.argv.slice(2);
if (root !== undefined) {
  const inventory = readInventory(new SysfsLayout(root), pciIdsPath === undefined ? {} : { pciIdsPath });
  process.stdout.write(JSON.stringify(inventory));
}
