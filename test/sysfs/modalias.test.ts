import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { modaliasFields, modaliasText } from '../../src/core/vfio-variant.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import { readInventory } from '../../src/sysfs/reader.js';

// hostdev spells a device's modalias from the IDs it has read (no extra sysfs read per device):
// it must be what the kernel's own `modalias` file says, on this machine's real /sys (read only).
describe('modalias', () => {
  it("equals the kernel's modalias file for every PCI function of this machine", () => {
    const layout = new SysfsLayout('/');
    const devices = readInventory(layout, { names: null }).devices;
    const checked = devices.filter((device) => existsSync(layout.device(device.address, 'modalias')));
    expect(checked.length).toBeGreaterThan(0);
    for (const device of checked) {
      const kernel = readFileSync(path.join(layout.device(device.address), 'modalias'), 'utf8').trim();
      const fields = modaliasFields(device);
      expect(fields === null ? null : modaliasText(fields), device.address).toBe(kernel);
    }
  });
});
