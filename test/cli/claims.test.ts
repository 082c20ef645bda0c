import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import { jsonOf, runCli } from '../support/cli.js';

const NVME = '0000:03:00.0';
const AUDIO = '0000:01:00.1';
const INIT_TOP = fileURLToPath(new URL('../../deploy/boot/initramfs-tools/scripts/init-top/hostdev-claims', import.meta.url));

let base: string;
let root: string;

function hostdev(...args: string[]): ReturnType<typeof runCli> {
  return runCli(['--root', root, '--simulate', ...args]);
}

function devDir(address: string): string {
  return path.join(root, 'sys/bus/pci/devices', address);
}

function driverOf(address: string): string | null {
  try {
    return path.basename(readlinkSync(path.join(devDir(address), 'driver')));
  } catch {
    return null;
  }
}

function overrideOf(address: string): string {
  return readFileSync(path.join(devDir(address), 'driver_override'), 'utf8').trim();
}

/** Every function's driver and driver_override: what "touches a device" would change. */
function everyDevice(): Map<string, string> {
  const dir = path.join(root, 'sys/bus/pci/devices');
  return new Map(readdirSync(dir).map((address) => [address, `${driverOf(address) ?? '-'} ${overrideOf(address)}`]));
}

function simWrite(file: string, value: string): void {
  const run = runCli(['--root', root, 'sim', 'write', file, value]);
  expect(run.code, run.stderr).toBe(0);
}

/** The simulated kernel's uevent log from line `from` on. */
function eventsSince(from: number): { action: string; address: string; driver?: string }[] {
  const lines = readFileSync(path.join(root, '.hostdev-sim/events.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
  return lines.slice(from).map((line) => JSON.parse(line) as { action: string; address: string; driver?: string });
}

function eventCount(): number {
  const file = path.join(root, '.hostdev-sim/events.jsonl');
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').length : 0;
}

/**
 * What a reboot leaves of a device (until the simulator has `sim reboot`): off its driver, with
 * driver_override cleared, as the kernel enumerates it before any driver probes.
 */
function rebootDevice(address: string): void {
  const driver = driverOf(address);
  if (driver !== null) simWrite(`/sys/bus/pci/drivers/${driver}/unbind`, address);
  simWrite(`/sys/bus/pci/devices/${address}/driver_override`, '\n');
}

/** The kernel probing the device (a driver's module load, drivers_probe): whichever driver matches takes it. */
function probe(address: string): void {
  simWrite('/sys/bus/pci/drivers_probe', address);
}

const claimFile = (address: string): string => path.join(root, 'etc/hostdev/claims.d', `pci-${address}`);
const rulesFile = (): string => path.join(root, 'etc/udev/rules.d/70-hostdev-claims.rules');

beforeEach(() => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-claims-'));
  root = path.join(base, 'root');
  buildHost(root, presets['workstation']!);
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('claim, unclaim, claims', () => {
  it('claim defines the claim, detaches the device now, and status and list show the owner hostdev/claim (a plain detach stays hostdev (detached))', () => {
    const claim = hostdev('claim', NVME, '--match', '144d:a808');
    expect(claim.code, claim.stderr).toBe(0);
    expect(claim.stdout).toContain(`claimed ${NVME} (144d:a808) for vfio-pci`);
    expect(driverOf(NVME)).toBe('vfio-pci');
    expect(readFileSync(claimFile(NVME), 'utf8')).toContain('address=0000:03:00.0\ndriver=vfio-pci\nvendor=144d\ndevice=a808\n');
    expect(readFileSync(rulesFile(), 'utf8')).toMatch(
      new RegExp(`KERNEL=="${NVME}", ATTR\\{vendor\\}=="0x144d", ATTR\\{device\\}=="0xa808", ATTR\\{subsystem_vendor\\}=="0x[0-9a-f]{4}", ATTR\\{subsystem_device\\}=="0x[0-9a-f]{4}", ATTR\\{class\\}=="0x0108\\*", ATTR\\{driver_override\\}="vfio-pci"`),
    );
    expect(hostdev('detach', AUDIO).code).toBe(0);

    const status = hostdev('status');
    expect(status.stdout).toMatch(/0000:03:00\.0\s+hostdev\/claim\s+unmanaged\s+vfio-pci\s+nvme/);
    expect(status.stdout).toMatch(/0000:01:00\.1\s+hostdev \(detached\)\s+unmanaged\s+vfio-pci\s+snd_hda_intel/);
    const json = jsonOf<{ inactive: { address: string }[]; claims: { address: string; driver: string; match: object }[] }>(hostdev('status', '--json'));
    // The inactive entries keep their fields; the claims come beside them.
    expect(json.inactive.map((e) => e.address)).toEqual([AUDIO, NVME]);
    expect(json.claims).toEqual([
      {
        key: `pci:${NVME}`,
        address: NVME,
        driver: 'vfio-pci',
        match: { vendor: '144d', device: 'a808' },
        identity: { subsystemVendor: '144d', subsystemDevice: 'a801', class: '0108', serialNumber: null, vpdSerial: null },
      },
    ]);
    const list = hostdev('list');
    expect(list.stdout.split('\n').find((l) => l.startsWith(NVME))).toMatch(/hostdev\/claim$/);
    expect(list.stdout.split('\n').find((l) => l.startsWith(AUDIO))).toMatch(/hostdev \(detached\)$/);
    const listed = jsonOf<{ address: string; owner: unknown; table: string; claimed?: boolean }[]>(hostdev('list', '--json'));
    expect(listed.find((d) => d.address === NVME)).toMatchObject({ owner: null, table: 'inactive', claimed: true });
    expect(listed.find((d) => d.address === AUDIO)).not.toHaveProperty('claimed');

    const claims = jsonOf<{ address: string; state: string; owner: string }[]>(hostdev('claims', '--json'));
    expect(claims).toEqual([expect.objectContaining({ address: NVME, state: 'applied', owner: 'hostdev/claim', match: '144d:a808' })]);
  });

  it('--match refuses a device with other IDs (HOSTDEV_CLAIM_MISMATCH, exit 4) and changes nothing', () => {
    const before = everyDevice();
    const run = hostdev('--json', 'claim', NVME, '--match', '8086:10ca');
    expect(run.code).toBe(4);
    const error = (JSON.parse(run.stderr) as { error: { code: string; message: string; hint: string } }).error;
    expect(error.code).toBe('HOSTDEV_CLAIM_MISMATCH');
    expect(error.message).toBe(`${NVME} is 144d:a808 on driver nvme, not the 8086:10ca the claim is for: not bound`);
    expect(error.hint).toContain('--match 144d:a808');
    expect(everyDevice()).toEqual(before);
    expect(existsSync(claimFile(NVME))).toBe(false);
  });

  it('claim --dry-run prints the plan and writes nothing', () => {
    const before = everyDevice();
    const run = hostdev('claim', NVME, '--dry-run');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('driver_override');
    expect(run.stdout).toContain(`would write ${claimFile(NVME)}`);
    expect(everyDevice()).toEqual(before);
    expect(existsSync(claimFile(NVME))).toBe(false);
    expect(existsSync(rulesFile())).toBe(false);
  });

  it('unclaim gives the device back and removes the claim and its rule; a second unclaim is HOSTDEV_NOT_CLAIMED (exit 3)', () => {
    expect(hostdev('claim', NVME).code).toBe(0);
    const run = hostdev('unclaim', NVME);
    expect(run.code, run.stderr).toBe(0);
    expect(driverOf(NVME)).toBe('nvme');
    expect(existsSync(claimFile(NVME))).toBe(false);
    expect(readFileSync(rulesFile(), 'utf8')).not.toContain(NVME);
    const status = jsonOf<{ inactive: unknown[] }>(hostdev('status', '--json'));
    expect(status.inactive).toEqual([]);
    expect(status).not.toHaveProperty('claims');
    const again = hostdev('--json', 'unclaim', NVME);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain('HOSTDEV_NOT_CLAIMED');
  });
});

describe('claims apply: what the boot units run', () => {
  it('after a reboot (device back on its host driver, override cleared) puts the claimed device on vfio-pci, touches nothing else, and is idempotent', () => {
    expect(hostdev('claim', NVME).code).toBe(0);
    rebootDevice(NVME);
    probe(NVME);
    expect(driverOf(NVME)).toBe('nvme');
    const others = everyDevice();
    others.delete(NVME);

    const apply = hostdev('--json', 'claims', 'apply');
    expect(apply.code, apply.stderr).toBe(0);
    expect(jsonOf<{ claims: { address: string; outcome: string }[] }>(apply).claims).toEqual([
      expect.objectContaining({ address: NVME, outcome: 'bound', detail: 'went from nvme to vfio-pci' }),
    ]);
    expect(driverOf(NVME)).toBe('vfio-pci');
    const after = everyDevice();
    after.delete(NVME);
    expect(after).toEqual(others);
    expect(hostdev('status').stdout).toMatch(/0000:03:00\.0\s+hostdev\/claim/);

    const seen = eventCount();
    const again = hostdev('--json', 'claims', 'apply');
    expect(again.code, again.stderr).toBe(0);
    expect(jsonOf<{ claims: { outcome: string }[] }>(again).claims.map((c) => c.outcome)).toEqual(['already']);
    expect(eventsSince(seen)).toEqual([]);
  });

  it('leaves a claimed address that holds another card (exit 8, HOSTDEV_CLAIM_MISMATCH in the item) and one with no device', () => {
    mkdirSync(path.dirname(claimFile(NVME)), { recursive: true });
    writeFileSync(claimFile(NVME), 'address=0000:03:00.0\ndriver=vfio-pci\nvendor=8086\ndevice=10ca\n');
    writeFileSync(claimFile('0000:0a:00.0'), 'address=0000:0a:00.0\ndriver=vfio-pci\nvendor=8086\ndevice=10ca\n');
    const before = everyDevice();
    const apply = hostdev('--json', 'claims', 'apply');
    expect(apply.code).toBe(8);
    const items = jsonOf<{ claims: { address: string; outcome: string; error: { code: string } | null }[] }>(apply).claims;
    expect(items).toEqual([
      expect.objectContaining({ address: NVME, outcome: 'mismatch', error: expect.objectContaining({ code: 'HOSTDEV_CLAIM_MISMATCH' }) }),
      expect.objectContaining({ address: '0000:0a:00.0', outcome: 'absent', error: null }),
    ]);
    expect(everyDevice()).toEqual(before);
  });

  it('records a claimed device the boot already put on its stub (no table entry yet): outcome recorded, no write', () => {
    mkdirSync(path.dirname(claimFile(NVME)), { recursive: true });
    writeFileSync(claimFile(NVME), 'address=0000:03:00.0\ndriver=vfio-pci\nvendor=144d\ndevice=a808\n');
    // vfio-pci loaded, as the initramfs hook's force_load does (the simulator loads modules only for hostdev's writes).
    expect(hostdev('detach', AUDIO).code).toBe(0);
    expect(hostdev('reattach', AUDIO).code).toBe(0);
    rebootDevice(NVME);
    simWrite(`/sys/bus/pci/devices/${NVME}/driver_override`, 'vfio-pci');
    probe(NVME);
    expect(driverOf(NVME)).toBe('vfio-pci');
    const seen = eventCount();
    const apply = hostdev('--json', 'claims', 'apply');
    expect(apply.code, apply.stderr).toBe(0);
    expect(jsonOf<{ claims: { outcome: string; detail: string }[] }>(apply).claims).toEqual([
      expect.objectContaining({ outcome: 'recorded', detail: 'on vfio-pci since boot; now in the inactive table' }),
    ]);
    expect(eventsSince(seen)).toEqual([]);
    expect(hostdev('status').stdout).toMatch(/0000:03:00\.0\s+hostdev\/claim\s+unmanaged\s+vfio-pci\s+-/);
    // It had no host driver when the claim took it at boot: unclaim probes for one, and nvme takes it.
    const unclaim = hostdev('unclaim', NVME);
    expect(unclaim.code, unclaim.stderr).toBe(0);
    expect(driverOf(NVME)).toBe('nvme');
  });

  it('the udev rule sets driver_override at add, and the simulated add path honours it: the device comes up on vfio-pci and its host driver never binds it', () => {
    expect(hostdev('claim', NVME).code).toBe(0);
    rebootDevice(NVME);
    const seen = eventCount();
    applyUdevRules(NVME);
    expect(overrideOf(NVME)).toBe('vfio-pci');
    probe(NVME);
    expect(driverOf(NVME)).toBe('vfio-pci');
    expect(eventsSince(seen).filter((e) => e.address === NVME && e.action === 'bind')).toEqual([{ action: 'bind', address: NVME, driver: 'vfio-pci', seq: expect.any(Number), time: expect.any(String) }]);
    const apply = hostdev('--json', 'claims', 'apply');
    expect(jsonOf<{ claims: { outcome: string }[] }>(apply).claims.map((c) => c.outcome)).toEqual(['already']);
  });

  it('the initramfs script sets driver_override of the claimed card only, so the stub takes it at the first probe', () => {
    expect(hostdev('claim', NVME).code).toBe(0);
    expect(hostdev('claim', AUDIO).code).toBe(0);
    // The card at AUDIO was swapped for another one: its claim must not take it.
    writeFileSync(claimFile(AUDIO), readFileSync(claimFile(AUDIO), 'utf8').replace('device=0fb9', 'device=0fba'));
    rebootDevice(NVME);
    rebootDevice(AUDIO);
    const run = spawnSync('sh', [INIT_TOP], { env: { ...process.env, HOSTDEV_CLAIMS_ROOT: root }, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toContain(`hostdev: ${AUDIO} is 0x10de:0x0fb9, not the claimed 10de:0fba: not claimed`);
    expect(overrideOf(NVME)).toBe('vfio-pci');
    expect(overrideOf(AUDIO)).toBe('(null)');
    probe(NVME);
    probe(AUDIO);
    expect(driverOf(NVME)).toBe('vfio-pci');
    expect(driverOf(AUDIO)).toBe('snd_hda_intel');
  });
});

/**
 * udev's part, for the rules hostdev writes: for an `add` of the device, each rule whose KERNEL
 * and ATTR{...}== keys match assigns its ATTR{...}= values (through the simulated kernel).
 */
function applyUdevRules(address: string): void {
  const rules = readFileSync(rulesFile(), 'utf8').split('\n').filter((line) => line.startsWith('ACTION=='));
  for (const rule of rules) {
    const keys = [...rule.matchAll(/([A-Z]+(?:\{[a-z_]+\})?)(==|=|\+=)"([^"]*)"/g)].map(([, key, op, value]) => ({ key: key!, op: op!, value: value! }));
    const matches = keys
      .filter((k) => k.op === '==')
      .every(({ key, value }) => {
        if (key === 'ACTION') return value === 'add';
        if (key === 'SUBSYSTEM') return value === 'pci';
        if (key === 'KERNEL') return value === address;
        const attr = /^ATTR\{(.+)\}$/.exec(key)?.[1];
        if (attr === undefined) return false;
        // udev's match values are globs; the rules hostdev writes use a trailing * only (class prefix).
        const actual = readFileSync(path.join(devDir(address), attr), 'utf8').trim();
        return value.endsWith('*') ? actual.startsWith(value.slice(0, -1)) : actual === value;
      });
    if (!matches) continue;
    for (const { key, value } of keys.filter((k) => k.op === '=')) {
      const attr = /^ATTR\{(.+)\}$/.exec(key)?.[1];
      if (attr !== undefined) simWrite(`/sys/bus/pci/devices/${address}/${attr}`, value);
    }
  }
}
