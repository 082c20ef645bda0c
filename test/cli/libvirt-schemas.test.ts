import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import { runCli } from '../support/cli.js';

/*
 * hostdev's libvirt XML checked against libvirt's own RelaxNG schemas, as Debian's libvirt-common
 * ships them (scripts/ensure-system-deps.sh unpacks the package into .cache/libvirt-schemas and
 * installs xmllint): every device `show --xml` prints, on the simulator's presets and on this
 * machine's own /sys (read only), must be a valid libvirt node device (nodedev.rng); the domain XML
 * files the --domain-xml tests feed hostdev must be valid libvirt domains (domain.rng), or valid
 * <hostdev>/<disk> elements as `virsh attach-device` takes them. Without the schemas or xmllint the
 * checks are skipped, except under CI, where that is a failure.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const SCHEMAS = [process.env.HOSTDEV_LIBVIRT_SCHEMAS, path.join(here, '../../.cache/libvirt-schemas/usr/share/libvirt/schemas'), '/usr/share/libvirt/schemas'].find(
  (dir): dir is string => dir !== undefined && existsSync(path.join(dir, 'nodedev.rng')),
);
const XMLLINT = spawnSync('xmllint', ['--version'], { encoding: 'utf8' }).status === 0;
const ready = SCHEMAS !== undefined && XMLLINT;
const missing = [SCHEMAS === undefined ? "libvirt's schemas (.cache/libvirt-schemas)" : null, XMLLINT ? null : 'xmllint (libxml2-utils)'].filter(Boolean).join(' and ');

let work = '';
beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'hostdev-libvirt-schemas-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The files that do not validate against `schema`, each with what xmllint said of it. */
function invalid(schema: string, files: readonly string[]): string[] {
  const run = spawnSync('xmllint', ['--noout', '--relaxng', schema, ...files], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.status === 0) return [];
  const bad = new Set(files.filter((file) => new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} fails to validate$`, 'm').test(run.stderr)));
  expect(bad.size, `xmllint failed without naming a file: ${run.stderr.slice(0, 2000)}`).toBeGreaterThan(0);
  return [...bad].map((file) => `${path.basename(file)}: ${run.stderr.split('\n').filter((line) => line.startsWith(file)).slice(0, 3).join(' | ')}`);
}

/** `show KEY --xml` of every device `list --kind all` shows on `root` (NVMe namespaces have no node device). */
function nodedevXml(root: string, tag: string, extra: readonly string[] = []): string[] {
  const listed = runCli(['--root', root, ...extra, 'list', '--kind', 'all', '--json'], { timeoutMs: 60_000 });
  expect(listed.code, listed.stderr).toBe(0);
  const keys = (JSON.parse(listed.stdout) as { key: string }[]).map((device) => device.key).filter((key) => !key.startsWith('nvme:'));
  expect(keys.length).toBeGreaterThan(0);
  return keys.map((key) => {
    const shown = runCli(['--root', root, ...extra, 'show', key, '--xml']);
    expect(shown.code, `${key}: ${shown.stderr}`).toBe(0);
    const file = path.join(work, `${tag}-${key.replace(/[^A-Za-z0-9_.-]/g, '_')}.xml`);
    writeFileSync(file, shown.stdout);
    return file;
  });
}

describe.skipIf(!ready && process.env.CI !== 'true')(`hostdev's libvirt XML against libvirt's schemas${ready ? '' : ` (skipped: no ${missing})`}`, () => {
  it('the schemas and xmllint are there (under CI they must be)', () => {
    expect(ready, `missing ${missing}: scripts/ensure-system-deps.sh fetches them`).toBe(true);
  });

  it.each(['sriov-nic', 'virt-host', 'workstation', 'gpu', 'nvme', 'mlx5-vfio', 'non-acs-switch', 'libvirt-test'])(
    'show --xml of every device of the %s preset is a valid libvirt node device (nodedev.rng)',
    (preset) => {
      const root = path.join(work, `host-${preset}`);
      buildHost(root, presets[preset]!);
      const files = nodedevXml(root, preset);
      expect(invalid(path.join(SCHEMAS!, 'nodedev.rng'), files)).toEqual([]);
    },
    120_000,
  );

  it("show --xml of every device of this machine's own /sys is a valid libvirt node device (read only)", () => {
    const files = nodedevXml('/', 'this-host');
    expect(invalid(path.join(SCHEMAS!, 'nodedev.rng'), files)).toEqual([]);
  }, 120_000);

  it("the fixtures show --xml is compared with are valid node devices, and a device libvirt's schema refuses is caught", () => {
    const fixtures = path.join(here, 'nodedev-xml');
    const files = readdirSync(fixtures).map((name) => path.join(fixtures, name));
    expect(invalid(path.join(SCHEMAS!, 'nodedev.rng'), files)).toEqual([]);
    // the check can fail: a PCI capability without its address is not a node device
    const broken = path.join(work, 'broken-nodedev.xml');
    writeFileSync(broken, readFileSync(path.join(fixtures, 'sriov-nic-vf.xml'), 'utf8').replace(/<bus>[^<]*<\/bus>/, ''));
    expect(invalid(path.join(SCHEMAS!, 'nodedev.rng'), [broken])).toHaveLength(1);
  });

  it('the domain XML files the --domain-xml tests use are valid libvirt domains, or devices as virsh attach-device takes them', () => {
    const fixtures = path.join(here, '../fixtures/libvirt');
    const files = readdirSync(fixtures).map((name) => path.join(fixtures, name));
    const domains = files.filter((file) => /<domain[\s>]/.test(readFileSync(file, 'utf8')));
    const devices = files.filter((file) => !domains.includes(file));
    expect(domains.length).toBeGreaterThan(0);
    expect(invalid(path.join(SCHEMAS!, 'domain.rng'), domains)).toEqual([]);
    // one <hostdev> or <disk>: the domain schema's own definitions of them, as the start
    const device = path.join(work, 'device.rng');
    writeFileSync(
      device,
      `<grammar xmlns="http://relaxng.org/ns/structure/1.0"><include href="${path.join(SCHEMAS!, 'domaincommon.rng')}"/><start><choice><ref name="hostdev"/><ref name="disk"/></choice></start></grammar>\n`,
    );
    if (devices.length > 0) expect(invalid(device, devices)).toEqual([]);
  });
});
