import { describe, expect, it } from 'vitest';
import { UdevMonitorParser } from '../../src/events/udev-parse.js';

const OUTPUT = `monitor will print the received events for:
KERNEL - the kernel uevent

KERNEL[5021.331702] unbind   /devices/pci0000:00/0000:00:03.0/0000:03:10.0 (pci)
ACTION=unbind
DEVPATH=/devices/pci0000:00/0000:00:03.0/0000:03:10.0
SUBSYSTEM=pci
SEQNUM=3301

KERNEL[5021.412007] remove   /devices/pci0000:00/0000:00:03.0/0000:03:10.0 (pci)
ACTION=remove
DEVPATH=/devices/pci0000:00/0000:00:03.0/0000:03:10.0
SUBSYSTEM=pci
PCI_CLASS=20000
PCI_SLOT_NAME=0000:03:10.0
SEQNUM=3302

KERNEL[5023.100000] bind     /devices/pci0000:00/0000:00:03.0/0000:03:10.2 (pci)
ACTION=bind
DEVPATH=/devices/pci0000:00/0000:00:03.0/0000:03:10.2
SUBSYSTEM=pci
DRIVER=vfio-pci
PCI_SLOT_NAME=0000:03:10.2
SEQNUM=3310
`;

describe('parsing `udevadm monitor --kernel --subsystem-match=pci --property`', () => {
  it('turns each block into an event with its action, PCI address and driver', () => {
    const parser = new UdevMonitorParser();
    const events = [...parser.feed(OUTPUT), ...parser.end()];
    expect(events.map((e) => [e.action, e.address, e.driver, e.seqnum])).toEqual([
      ['unbind', '0000:03:10.0', null, 3301],
      ['remove', '0000:03:10.0', null, 3302],
      ['bind', '0000:03:10.2', 'vfio-pci', 3310],
    ]);
  });

  it('gives the same events however the output is cut into chunks', () => {
    const parser = new UdevMonitorParser();
    const events = [];
    for (let i = 0; i < OUTPUT.length; i += 7) events.push(...parser.feed(OUTPUT.slice(i, i + 7)));
    events.push(...parser.end());
    expect(events.map((e) => e.action)).toEqual(['unbind', 'remove', 'bind']);
  });

  it('reads events printed without --property from their header line alone', () => {
    const parser = new UdevMonitorParser();
    const events = [...parser.feed('KERNEL[1.5] add      /devices/pci0000:00/0000:00:1c.0/0000:01:00.0 (pci)\n'), ...parser.end()];
    expect(events).toEqual([{ action: 'add', devpath: '/devices/pci0000:00/0000:00:1c.0/0000:01:00.0', address: '0000:01:00.0', driver: null, seqnum: null }]);
  });
});
