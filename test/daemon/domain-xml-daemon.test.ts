import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { OperationRecordJson } from '../../src/daemon/schemas.js';
import { killBackgroundAfterEach } from '../support/background.js';
import { runCliAsync } from '../support/cli.js';
import { cleanUpAfterEach, curl, daemonHost, daemonProcess } from './daemon-host.js';

killBackgroundAfterEach();
cleanUpAfterEach();

const XML = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'libvirt', 'desktop-passthrough.xml');
const NIC = '0000:00:19.0';
const MDEV = 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01';

describe('assign --domain-xml and release --domain-xml through a running daemon', () => {
  it('the daemon runs them as one assign and one release operation naming every device by key', { timeout: 120_000 }, async () => {
    const host = daemonHost('virt-host');
    await daemonProcess(host);
    const global = ['--root', host.root, '--state-dir', host.stateDir, '--simulate', '--socket-dir', host.socketDir];
    const assigned = await runCliAsync([...global, 'assign', '--domain-xml', XML], { timeoutMs: 60_000 });
    expect(assigned.stderr).toBe('');
    expect(assigned.stdout.split('\n')[0]).toBe(`assigned to domain win11 (qemu): ${NIC}, ${MDEV}, usb:1-1.2`);
    const released = await runCliAsync([...global, 'release', '--domain-xml', XML], { timeoutMs: 60_000 });
    expect(released.code, released.stderr).toBe(0);
    const operations = (await curl(host.socket, 'GET', '/v1/operations')).json<OperationRecordJson[]>();
    expect(operations.map((operation) => [operation.kind, operation.state, operation.owner?.vm, operation.devices])).toEqual([
      ['release', 'completed', 'win11', [`pci:${NIC}`, MDEV, 'usb:1050:0407']],
      ['assign', 'completed', 'win11', [`pci:${NIC}`, MDEV, 'usb:1050:0407']],
    ]);
  });
});
