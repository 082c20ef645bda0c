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
