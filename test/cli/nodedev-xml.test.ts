import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import { runCli } from '../support/cli.js';
import { cleanupRoots, tempRoot } from '../sim/helpers.js';

afterAll(cleanupRoots);

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'nodedev-xml');

function host(preset: string): string {
  const root = path.join(tempRoot('hostdev-nodedev-'), 'host');
  buildHost(root, presets[preset]!);
  return root;
}

/** Elements in document order with their attributes and text: what two XML texts must share to say the same. */
const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', preserveOrder: true, parseTagValue: false, parseAttributeValue: false, trimValues: true });
const tree = (xml: string): unknown => parser.parse(xml);

const nic = host('sriov-nic');
const virt = host('virt-host');

describe('show KEY --xml: the device as virsh nodedev-dumpxml prints it', () => {
  it.each([
    [nic, '0000:01:00.0', 'sriov-nic-pf.xml'],
    [nic, 'pci:0000:01:10.0', 'sriov-nic-vf.xml'],
    [virt, 'usb:1-1.2', 'virt-host-usb.xml'],
    [virt, 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01', 'virt-host-mdev.xml'],
    [virt, 'scsi:2:0:1:0', 'virt-host-scsi.xml'],
  ])('%s %s equals %s, element for element', (root, key, file) => {
    const run = runCli(['--root', root, 'show', key, '--xml']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(tree(run.stdout)).toEqual(tree(fs.readFileSync(path.join(FIXTURES, file), 'utf8')));
  });

  it('a device name with XML special characters is escaped, not passed through', () => {
    const root = host('virt-host');
    fs.writeFileSync(path.join(root, 'sys/bus/usb/devices/1-4/product'), 'Keys <&> "Co"\n');
    const run = runCli(['--root', root, 'show', 'usb:1-4', '--xml']);
    expect(run.stdout).toContain('Keys &lt;&amp;&gt; &quot;Co&quot;');
    expect((tree(run.stdout) as Array<{ device: Array<Record<string, unknown>> }>)[0]!.device.length).toBeGreaterThan(0);
  });

  it('an NVMe namespace has no node device in libvirt: usage error naming its controller; --xml with --json is refused', () => {
    const nvme = runCli(['--root', virt, 'show', 'nvme:0000:01:00.0/1', '--xml']);
    expect(nvme.code).toBe(2);
    expect(nvme.stderr).toContain('hostdev show pci:0000:01:00.0 --xml');
    expect(runCli(['--root', virt, 'show', 'usb:1-4', '--xml', '--json']).code).toBe(2);
  });
});

/*
 * libvirt's src/conf/schemas/nodedev.rng, as facts: the children <device> may have (an interleave, but
 * virsh prints them in this order), and the sequence of <capability type='pci'> (cappcidev), of
 * usb_device, mdev and scsi. Each element may be left out
 * where the schema says optional; the required ones are checked too. No xmllint on this machine, so
 * the structure is checked here.
 */
const DEVICE_CHILDREN = { order: ['name', 'path', 'devnode', 'parent', 'driver', 'capability'], required: ['name'] };
const CAPABILITY_CHILDREN: Record<string, { order: string[]; required: string[] }> = {
  pci: {
    order: ['class', 'domain', 'bus', 'slot', 'function', 'product', 'vendor', 'capability', 'iommuGroup', 'numa', 'pci-express'],
    required: ['domain', 'bus', 'slot', 'function', 'product', 'vendor'],
  },
  usb_device: { order: ['bus', 'device', 'product', 'vendor'], required: ['bus', 'device', 'product', 'vendor'] },
  // An interleave in the schema; virsh prints type, uuid, parent_addr, iommuGroup, then the attrs.
  mdev: { order: ['type', 'uuid', 'parent_addr', 'iommuGroup', 'attr'], required: ['type'] },
  scsi: { order: ['host', 'bus', 'target', 'lun', 'type'], required: ['host', 'bus', 'target', 'lun'] },
};
const PCI_SUBCAPABILITIES = ['phys_function', 'virt_functions', 'pci-bridge', 'cardbus-bridge'];

type Ordered = Record<string, unknown> & { ':@'?: Record<string, string> };
const nameOf = (node: Ordered): string | undefined => Object.keys(node).find((key) => key !== ':@' && key !== '#text');
const childrenOf = (node: Ordered): Ordered[] => ((node[nameOf(node)!] as Ordered[] | undefined) ?? []).filter((c) => nameOf(c) !== undefined);

/** The names in document order follow `order` (repeats allowed), with every required one present. */
function expectSequence(names: string[], rule: { order: string[]; required: string[] }, where: string): void {
  const ranks = names.map((name) => rule.order.indexOf(name));
  expect(ranks.every((rank) => rank >= 0), `${where}: ${names.join(' ')} names an element the schema does not have`).toBe(true);
  expect([...ranks].sort((a, b) => a - b), `${where}: ${names.join(' ')} out of the schema's order`).toEqual(ranks);
  for (const name of rule.required) expect(names, `${where}: ${name} is required`).toContain(name);
}

describe("show --xml follows nodedev.rng's structure", () => {
  it.each([
    [nic, '0000:01:00.0'],
    [nic, '0000:01:10.0'],
    [virt, '0000:00:02.0'],
    [virt, '0000:00:1c.0'],
    [virt, 'usb:1-1.2'],
    [virt, 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01'],
    [virt, 'scsi:2:0:1:0'],
  ])('%s %s', (root, key) => {
    const run = runCli(['--root', root, 'show', key, '--xml']);
    expect(run.code).toBe(0);
    const [device] = (parser.parse(run.stdout) as Ordered[]).filter((node) => nameOf(node) !== undefined);
    expect(nameOf(device!)).toBe('device');
    const children = childrenOf(device!);
    expectSequence(children.map((c) => nameOf(c)!), DEVICE_CHILDREN, key);
    const capability = children.find((c) => nameOf(c) === 'capability')!;
    const type = capability[':@']?.['@_type'] ?? '';
    const rule = CAPABILITY_CHILDREN[type];
    expect(rule, `capability type ${type}`).toBeDefined();
    const inner = childrenOf(capability);
    expectSequence(inner.map((c) => nameOf(c)!), rule!, `${key} capability ${type}`);
    for (const sub of inner.filter((c) => nameOf(c) === 'capability')) expect(PCI_SUBCAPABILITIES).toContain(sub[':@']?.['@_type']);
    for (const express of inner.filter((c) => nameOf(c) === 'pci-express')) {
      for (const link of childrenOf(express)) {
        expect(nameOf(link)).toBe('link');
        expect(['cap', 'sta']).toContain(link[':@']?.['@_validity']);
        expect(link[':@']?.['@_width']).toMatch(/^[0-9]+$/);
        if (link[':@']?.['@_speed'] !== undefined) expect(link[':@']?.['@_speed']).toMatch(/^[0-9]+(\.[0-9]+)?$/);
      }
    }
  });
});

