/**
 * Child process that reads the ChildFacts (among them every file the kernel can hold up) of every PCI
 * function and prints them on stdout. On a real kernel such a read can block in D state for as
 * long as a VM holds a VF whose removal is pending (a PF's sriov_numvfs, the VF's own
 * driver_override); the blocked read then takes only this process, which the CLI abandons.
 * Argument: ROOT.
 */
import { readChildInventory } from './inventory.js';
import { encodeChildReads } from './child-wire.js';
import { SysfsLayout } from './paths.js';

const [root] = process.argv.slice(2);
if (root !== undefined) process.stdout.write(encodeChildReads(readChildInventory(new SysfsLayout(root))));
