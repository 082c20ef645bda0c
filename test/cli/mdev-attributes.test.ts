import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSimulatedHost, presets, type HostSpec } from '../../src/sim-entry.js';
import { jsonOf, runCli } from '../support/cli.js';

// mdevctl's attributes (`attrs`, written in order once the mdev is made; one refused removes it
// again) and its start modes ("auto" made at boot, "manual" only by `start`), on a virt-host whose
// GVT-g types carry two attributes, as vfio_ap's matrix mdevs do.
const __dirname = path.dirname(fileURLToPath(import.meta.url));
const GPU = '0000:00:02.0';
const TYPE = 'i915-GVTg_V5_4';
const UUID = 'c297db4a-f4c2-11e6-90f6-d3b88d6c9525';
const UUID2 = '0d3e9a51-5c41-4a5e-9b1c-2f1f1e1e2b02';
const MDEV_DIR = (uuid: string) => `sys/bus/mdev/devices/${uuid}`;
let base = '';
let root = '';
let spec: HostSpec;
const cli = (args: string[], env?: Record<string, string>) => runCli(['--root', root, '--simulate', '--no-daemon', ...args], env === undefined ? {} : { env });

/** The virt-host preset with attributes on the GPU's mdev types. */
function withAttributes(source: HostSpec): HostSpec {
  const text = JSON.stringify(source);
  const copy = JSON.parse(text) as { root: unknown };
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    if (Array.isArray(record.types) && typeof record.driver === 'string') {
      record.types = (record.types as Record<string, unknown>[]).map((type) => ({ ...type, attributes: ['assign_adapter', 'assign_domain'] }));
    }
    Object.values(record).forEach(visit);
  };
  visit(copy);
  return copy as unknown as HostSpec;
}

beforeAll(() => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-cli-mdev-attrs-'));
  spec = withAttributes(presets['virt-host']!);
});
beforeEach(() => {
  root = path.join(base, `host-${Math.random().toString(36).slice(2)}`);
  createSimulatedHost(root, { spec });
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('mdev attributes', () => {
  it('create --attr writes each attribute in order after the create; --dry-run prints all the writes', () => {
    const dry = cli(['mdev', 'create', GPU, TYPE, '--uuid', UUID, '--attr', 'assign_adapter=0x05', '--attr', 'assign_domain=0x0004', '--dry-run']);
    expect(dry.stdout.trim().split('\n')).toEqual([
      `dry run: would write /sys/class/mdev_bus/${GPU}/mdev_supported_types/${TYPE}/create "${UUID}"`,
      `dry run: would write /sys/bus/mdev/devices/${UUID}/assign_adapter "0x05"`,
      `dry run: would write /sys/bus/mdev/devices/${UUID}/assign_domain "0x0004"`,
    ]);
    expect(existsSync(path.join(root, MDEV_DIR(UUID)))).toBe(false);

    const made = cli(['mdev', 'create', GPU, TYPE, '--uuid', UUID, '--attr', 'assign_adapter=0x05', '--attr', 'assign_domain=0x0004']);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout.trim()).toBe(`created mdev:${UUID} (type ${TYPE} on ${GPU}, assign_adapter=0x05 assign_domain=0x0004)`);
    expect(readFileSync(path.join(root, MDEV_DIR(UUID), 'assign_adapter'), 'utf8')).toBe('0x05');
    expect(readFileSync(path.join(root, MDEV_DIR(UUID), 'assign_domain'), 'utf8')).toBe('0x0004');
  });

  it('an attribute the kernel refuses removes the mdev again and says so (HOSTDEV_KERNEL_WRITE, exit 6)', () => {
    const faults = JSON.stringify([{ action: 'fail', match: 'assign_domain', errno: 'EINVAL' }]);
    const refused = cli(['--json', 'mdev', 'create', GPU, TYPE, '--uuid', UUID, '--attr', 'assign_adapter=0x05', '--attr', 'assign_domain=0x0004', '--persist'], { HOSTDEV_SIM_FAULTS: faults });
    expect(refused.code).toBe(6);
    const error = JSON.parse(refused.stderr).error as { code: string; message: string; details: Record<string, unknown> };
    expect(error.code).toBe('HOSTDEV_KERNEL_WRITE');
    expect(error.message).toContain(`writing to /sys/bus/mdev/devices/${UUID}/assign_domain failed with EINVAL`);
    expect(error.message).toContain(`mdev:${UUID} was removed again`);
    expect(error.details).toMatchObject({ removed: true, errno: 'EINVAL' });
    expect(existsSync(path.join(root, MDEV_DIR(UUID)))).toBe(false);
    // no definition of an mdev that could not be made as asked
    expect(existsSync(path.join(root, 'etc/hostdev/mdev.d', `${UUID}.json`))).toBe(false);
    // the instance is back on the type
    const listed = jsonOf<{ parents: { types: { id: string; availableInstances: number }[] }[] }>(cli(['--json', 'mdev', 'list']));
    expect(listed.parents[0]!.types.find((t) => t.id === TYPE)!.availableInstances).toBe(2);
  });

  it('an attribute the mdev does not have is refused the same way (ENOENT); a name with a path is a usage error before any write', () => {
    const missing = cli(['--json', 'mdev', 'create', GPU, TYPE, '--uuid', UUID, '--attr', 'no_such_attr=1']);
    expect(missing.code).toBe(6);
    expect(JSON.parse(missing.stderr).error.message).toContain('failed with ENOENT');
    expect(existsSync(path.join(root, MDEV_DIR(UUID)))).toBe(false);
    for (const bad of ['../remove=1', 'a/b=1', '=1', 'noequals']) {
      const usage = cli(['--json', 'mdev', 'create', GPU, TYPE, '--uuid', UUID, '--attr', bad]);
      expect(usage.code, bad).toBe(2);
      expect(JSON.parse(usage.stderr).error.code, bad).toBe('HOSTDEV_USAGE');
    }
    expect(existsSync(path.join(root, MDEV_DIR(UUID)))).toBe(false);
  });
});

describe('mdev definitions: start modes, attributes, define and start', () => {
  it('start-defined makes "auto" definitions with their attributes, leaves "manual" ones to `mdev start UUID`', () => {
    const auto = cli(['--json', 'mdev', 'create', GPU, TYPE, '--uuid', UUID, '--attr', 'assign_adapter=0x05', '--persist']);
    expect(auto.code, auto.stderr).toBe(0);
    const file = jsonOf<{ definition: string }>(auto).definition;
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ uuid: UUID, parent: GPU, type: TYPE, start: 'auto', attrs: [{ assign_adapter: '0x05' }] });
    const manual = cli(['mdev', 'define', GPU, TYPE, '--uuid', UUID2, '--manual', '--attr', 'assign_domain=0x0004']);
    expect(manual.code, manual.stderr).toBe(0);
    expect(manual.stdout.trim()).toBe(`defined mdev:${UUID2} (type ${TYPE} on ${GPU}, start manual) in ${path.join(root, 'etc/hostdev/mdev.d', `${UUID2}.json`)}`);
    expect(existsSync(path.join(root, MDEV_DIR(UUID2)))).toBe(false);
    expect(cli(['--json', 'mdev', 'create', GPU, TYPE, '--manual']).code).toBe(2);

    const listed = jsonOf<{ definitions: { uuid: string; start: string; present: boolean }[] }>(cli(['--json', 'mdev', 'list']));
    expect(listed.definitions.map((d) => [d.uuid, d.start, d.present])).toEqual([
      [UUID2, 'manual', false],
      [UUID, 'auto', true],
    ]);
    expect(cli(['mdev', 'list']).stdout).toMatch(new RegExp(`mdev:${UUID2} +${GPU} +${TYPE} +manual +assign_domain=0x0004 +no`));

    // a reboot: the mdevs are gone, the definitions are not
    expect(cli(['mdev', 'remove', UUID]).code).toBe(0);
    const boot = cli(['mdev', 'start-defined']);
    expect(boot.code, boot.stderr).toBe(0);
    expect(boot.stdout.trim().split('\n')).toEqual([
      `created mdev:${UUID} (type ${TYPE} on ${GPU}, assign_adapter=0x05)`,
      `mdev:${UUID2} is defined with start manual: not made (\`hostdev mdev start UUID\` makes it)`,
    ]);
    expect(readFileSync(path.join(root, MDEV_DIR(UUID), 'assign_adapter'), 'utf8')).toBe('0x05');
    expect(existsSync(path.join(root, MDEV_DIR(UUID2)))).toBe(false);

    const started = cli(['mdev', 'start', UUID2]);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout.trim()).toBe(`created mdev:${UUID2} (type ${TYPE} on ${GPU}, assign_domain=0x0004)`);
    expect(cli(['mdev', 'start', UUID2]).stdout.trim()).toBe(`mdev:${UUID2} is there already`);
    const unknown = cli(['--json', 'mdev', 'start', '11111111-2222-3333-4444-555555555555']);
    expect(unknown.code).toBe(3);
    expect(JSON.parse(unknown.stderr).error.code).toBe('HOSTDEV_DEVICE_NOT_FOUND');
  });

  it('a definition file from before start and attrs existed is "auto" with none; a malformed attrs list is refused by file', () => {
    const dir = path.join(root, 'etc/hostdev/mdev.d');
    expect(cli(['mdev', 'define', GPU, TYPE, '--uuid', UUID]).code).toBe(0);
    writeFileSync(path.join(dir, `${UUID}.json`), JSON.stringify({ uuid: UUID, parent: GPU, type: TYPE }));
    expect(cli(['mdev', 'start-defined']).stdout.trim()).toBe(`created mdev:${UUID} (type ${TYPE} on ${GPU})`);
    writeFileSync(path.join(dir, `${UUID2}.json`), JSON.stringify({ uuid: UUID2, parent: GPU, type: TYPE, attrs: [{ a: '1', b: '2' }] }));
    const bad = cli(['--json', 'mdev', 'start-defined']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stderr).error.message).toBe(`${path.join(dir, `${UUID2}.json`)} is not an mdev definition`);
  });

  it('define checks the type when the parent is there, and accepts a parent that is not (yet)', () => {
    expect(JSON.parse(cli(['--json', 'mdev', 'define', GPU, 'no-such-type']).stderr).error.code).toBe('HOSTDEV_DEVICE_NOT_FOUND');
    const later = cli(['--json', 'mdev', 'define', '0000:af:00.0', 'nvidia-63', '--uuid', UUID]);
    expect(later.code, later.stderr).toBe(0);
    const report = jsonOf<{ operation: string; parent: string; type: string; start: string }>(later);
    expect(report).toMatchObject({ operation: 'mdev-define', parent: '0000:af:00.0', type: 'nvidia-63', start: 'auto' });
    const boot = cli(['mdev', 'start-defined']);
    expect(boot.code).toBe(8);
    expect(boot.stderr).toContain(`mdev:${UUID} not made: 0000:af:00.0 is not a mediated device parent on this host`);
  });
});

describe('a parent that registers after boot (udev/60-hostdev-mdev.rules)', () => {
  it('the rule runs start-defined --parent $kernel on MDEV_STATE=registered; that makes the auto definitions of that parent only', () => {
    const rule = readFileSync(path.join(__dirname, '../../udev/60-hostdev-mdev.rules'), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'));
    expect(rule).toHaveLength(1);
    expect(rule[0]).toMatch(/^ACTION=="change", ENV\{MDEV_STATE\}=="registered", TEST=="\/etc\/hostdev\/mdev\.d", RUN\+="(.*)"$/);
    const argv = /RUN\+="\/usr\/bin\/env HOSTDEV_STATE_DIR=\/var\/lib\/hostdev hostdev (.*)"$/.exec(rule[0]!)![1]!.split(' ');
    expect(argv).toEqual(['mdev', 'start-defined', '--parent', '$kernel']);

    expect(cli(['mdev', 'define', GPU, TYPE, '--uuid', UUID]).code).toBe(0);
    expect(cli(['mdev', 'define', '0000:af:00.0', 'nvidia-63', '--uuid', UUID2]).code).toBe(0);
    // what udev runs for the GPU: its definition only, the other parent's is not tried
    const ran = cli(argv.map((arg) => (arg === '$kernel' ? GPU : arg)));
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout.trim()).toBe(`created mdev:${UUID} (type ${TYPE} on ${GPU})`);
    expect(cli(['mdev', 'start-defined', '--parent', 'mtty']).stdout.trim()).toBe('no mediated device is defined on mtty');
  });
});

describe('the simulator: a type\'s attributes', () => {
  it('every mdev of the type shows them, and `sim snapshot` keeps them', () => {
    expect(cli(['mdev', 'create', GPU, TYPE, '--uuid', UUID]).code).toBe(0);
    expect(existsSync(path.join(root, MDEV_DIR(UUID), 'assign_adapter'))).toBe(true);
    const copy = path.join(base, `snap-${Math.random().toString(36).slice(2)}`);
    const snap = runCli(['--root', root, 'sim', 'snapshot', copy]);
    expect(snap.code, snap.stderr).toBe(0);
    expect(existsSync(path.join(copy, MDEV_DIR(UUID), 'assign_domain'))).toBe(true);
  });
});
