import { connect, createServer, type Server } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { OperationRecordJson } from '../../src/daemon/schemas.js';
import { killBackgroundAfterEach, waitFor } from '../support/background.js';
import { qemuMissing, startQemu, type RunningQemu } from '../support/qemu.js';
import { cleanUpAfterEach, curl, daemonHost, daemonProcess } from './daemon-host.js';

killBackgroundAfterEach();
cleanUpAfterEach();

const VF = '0000:01:10.0';

/**
 * Between the daemon and QEMU: every line goes through except a `device_add`, which is swallowed
 * (never answered), so the hot-plug stands still after its assign, where the test kills the daemon.
 */
function swallowingDeviceAdd(socket: string, upstream: string): { readonly server: Server; readonly sawDeviceAdd: () => boolean } {
  let saw = false;
  const server = createServer((client) => {
    const qemu = connect(upstream);
    qemu.pipe(client);
    qemu.on('error', () => client.destroy());
    client.on('error', () => qemu.destroy());
    client.on('close', () => qemu.destroy());
    let buffer = '';
    client.setEncoding('utf8');
    client.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
        const line = buffer.slice(0, end + 1);
        buffer = buffer.slice(end + 1);
        if (line.includes('"device_add"')) saw = true;
        else qemu.write(line);
      }
    });
  }).listen(socket);
  return { server, sawDeviceAdd: () => saw };
}

describe.skipIf(qemuMissing !== null)('a daemon killed in the middle of a hot-plug', () => {
  let qemu: RunningQemu | null = null;
  let proxy: Server | null = null;
  afterEach(async () => {
    proxy?.close();
    proxy = null;
    await qemu?.stop();
    qemu = null;
  });

  /** A hot-plug of `devices` through the daemon, killed (-9) while QEMU has not answered its device_add; then a new daemon. */
  async function killedMidHotplug(host: ReturnType<typeof daemonHost>, devices: readonly string[], qemuDevices: readonly string[] = []): Promise<OperationRecordJson> {
    qemu = await startQemu({ rootPorts: ['rp1'], devices: qemuDevices });
    const socket = path.join(path.dirname(qemu.socket), 'vm1-proxy.qmp');
    const middle = swallowingDeviceAdd(socket, qemu.socket);
    proxy = middle.server;
    await new Promise((resolve) => middle.server.once('listening', resolve));
    const first = await daemonProcess(host);
    const started = await curl(host.socket, 'POST', '/v1/domains/qemu/vm1/hotplug?wait=100', { devices, qmp: socket });
    expect(started.status, started.body).toBe(202);
    const op = started.json<OperationRecordJson>();
    await waitFor(() => middle.sawDeviceAdd(), 15_000);
    first.child.kill('SIGKILL');
    await first.done;
    await daemonProcess(host);
    return op;
  }

  it('kill -9 after the assign, device_add unanswered: the next start settles the operation as failed and keeps the committed assign, saying so', async () => {
    const host = daemonHost();
    const op = await killedMidHotplug(host, [`pci:${VF}`]);
    const after = await curl(host.roSocket, 'GET', `/v1/operations/${op.id}/wait?timeout=1000`);
    const record = after.json<OperationRecordJson>();
    expect(record).toMatchObject({ id: op.id, kind: 'hotplug', state: 'failed', error: { code: 'HOSTDEV_INTERRUPTED', details: { kept: [VF] } } });
    expect((record as { error: { message: string } }).error.message).toMatch(/its assign was committed and is kept: 0000:01:10\.0 stay\(s\) assigned to vm1/);
    // What the journal says (the assign committed) is what the tables say: the device is vm1's, on its stub.
    const device = await curl(host.roSocket, 'GET', `/v1/devices/pci:${VF}`);
    expect(device.json()).toMatchObject({ driver: 'vfio-pci', table: 'active', owner: expect.objectContaining({ vm: 'vm1' }) });
  });

  it('the same for a USB key: the operation is failed and names the usb: device its committed assign keeps', async () => {
    const host = daemonHost('virt-host');
    const op = await killedMidHotplug(host, ['usb:1-1.2'], ['qemu-xhci,id=hostdev-xhci,bus=rp1']);
    const after = await curl(host.roSocket, 'GET', `/v1/operations/${op.id}/wait?timeout=1000`);
    expect(after.json<OperationRecordJson>()).toMatchObject({ id: op.id, kind: 'hotplug', state: 'failed', error: { code: 'HOSTDEV_INTERRUPTED', details: { kept: ['usb:1-1.2'] } } });
    const device = await curl(host.roSocket, 'GET', '/v1/devices/usb:1-1.2');
    expect(device.json()).toMatchObject({ device: { key: 'usb:1-1.2', table: 'active', owner: { domain: 'vm1' } } });
  });
});
