import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importCycles, importGraph, importSites, layerOf, readSources, ruleBreaks, type LayerRule } from './import-graph.js';

/**
 * Dependencies point inward. A layer is a folder of src/ (index.ts, the library entry, is its own);
 * its files may import each other and the layers named here, nothing else:
 *
 *   core     nothing: no other layer, no package, no Node.js module (pure domain code; the ports
 *            and types the plans need, such as KernelFiles, are defined in core)
 *   platform nothing of hostdev         facts of the operating system (is a process alive), containment under the root
 *   sysfs    core                      the /sys layout, the inventory reader, the kernel-write port
 *   state    core                      the tables in SQLite
 *   net      core                      VF network config through iproute2
 *   events   core, sysfs               the watcher's snapshots read the device states from sysfs
 *   host     core, sysfs, net          host usage reads /sys/class/block under the layout and runs
 *                                      `ip -j addr` through the iproute2 runner
 *   sim      core, sysfs               the simulated kernel implements sysfs's KernelPort
 *   qmp      core                      a running VM's QEMU monitor (QMP) and its PCI slots
 *   manager  core and every adapter    combines them; never cli or sim
 *   service  core, adapters, manager   HostdevService, the one way in for every front end
 *   k8s      core, service             the kubelet device plugin: a front end of the service
 *   daemon   core, adapters, sim, manager, service   hostdevd: HTTP on unix sockets over the service
 *   client   core                      HostdevClient: HTTP over the daemon's socket (node:http only)
 *   cli      every layer but the entries (the client: commands go through a daemon that answers)
 *   index.ts every layer but sim, daemon and cli (the package root: the service, the model, the client)
 *   sim-entry.ts  core, host, sim      the simulator's own entry (hostdev/sim)
 *
 * Every layer but core may import platform. Nobody imports index.ts or sim-entry.ts. Type-only imports count: a type ties its user to the module that
 * declares it as much as a value does, and a type-only cycle is still two modules that cannot be
 * understood or moved apart. No file may take part in an import cycle, within a layer or across.
 */
const ADAPTERS = ['platform', 'sysfs', 'state', 'net', 'host', 'events', 'qmp'];
const RULES: Readonly<Record<string, LayerRule>> = {
  core: { imports: [], packages: false },
  platform: { imports: [], packages: true },
  sysfs: { imports: ['core', 'platform'], packages: true },
  state: { imports: ['core', 'platform'], packages: true },
  net: { imports: ['core', 'platform'], packages: true },
  events: { imports: ['core', 'platform', 'sysfs'], packages: true },
  host: { imports: ['core', 'platform', 'sysfs', 'net'], packages: true },
  sim: { imports: ['core', 'platform', 'sysfs'], packages: true },
  qmp: { imports: ['core', 'platform'], packages: true },
  manager: { imports: ['core', ...ADAPTERS], packages: true },
  service: { imports: ['core', ...ADAPTERS, 'manager'], packages: true },
  k8s: { imports: ['core', 'service'], packages: true },
  daemon: { imports: ['core', ...ADAPTERS, 'sim', 'manager', 'service'], packages: true },
  client: { imports: ['core'], packages: true },
  cli: { imports: ['core', ...ADAPTERS, 'sim', 'manager', 'service', 'k8s', 'daemon', 'client'], packages: true },
  'index.ts': { imports: ['core', ...ADAPTERS, 'manager', 'service', 'client'], packages: true },
  'sim-entry.ts': { imports: ['core', 'host', 'sim'], packages: true },
};

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

describe('the import graph of src/', () => {
  const graph = importGraph(readSources(SRC));

  it('is read whole: every kind of import is seen and every relative import names a file', () => {
    const has = (from: string, to: string): boolean => graph.edges.some((edge) => edge.from === from && edge.to === to);
    expect(graph.files.length).toBeGreaterThan(100);
    expect(graph.edges.filter((edge) => !edge.external).length).toBeGreaterThan(400);
    expect(has('manager/hostdev-manager.ts', 'core/plan-node.ts')).toBe(true);
    expect(has('index.ts', 'core/address.ts')).toBe(true);
    expect(has('cli/kernel-port-for.ts', 'sim/kernel.ts')).toBe(true);
    expect(has('state/store.ts', 'better-sqlite3')).toBe(true);
    expect(graph.unresolved).toEqual([]);
  });

  it('has a rule for every layer', () => {
    const layers = new Set(graph.files.map(layerOf));
    expect([...layers].filter((layer) => RULES[layer] === undefined)).toEqual([]);
  });

  it('imports only inward', () => {
    expect(ruleBreaks(graph, RULES)).toEqual([]);
  });

  it('has no cycle', () => {
    expect(importCycles(graph)).toEqual([]);
  });
});

describe('the import-graph checks', () => {
  it('see static, side-effect, re-export, dynamic and type imports, and nothing in comments or strings', () => {
    const text = [
      "import a from './a.js';",
      "import type { B } from '../b/b.js';",
      "import './side.js';",
      "export { c } from './c.js';",
      "export * from 'node:fs';",
      "const e = await import('./e.js');",
      "type F = typeof import('./f.js');",
      'const g = await import(`./g.js`);',
      'const h = await import(name);',
      "// import i from './i.js';",
      "const j = \"import('./j.js')\";",
      'export const k = 1;',
    ].join('\n');
    expect(importSites('x/x.ts', text)).toEqual([
      { specifier: './a.js', line: 1 },
      { specifier: '../b/b.js', line: 2 },
      { specifier: './side.js', line: 3 },
      { specifier: './c.js', line: 4 },
      { specifier: 'node:fs', line: 5 },
      { specifier: './e.js', line: 6 },
      { specifier: './f.js', line: 7 },
      { specifier: './g.js', line: 8 },
      { specifier: null, line: 9 },
    ]);
  });

  const tiny = importGraph(
    new Map([
      ['core/a.ts', "import { b } from '../sysfs/b.js';\nimport { readFileSync } from 'node:fs';"],
      ['sysfs/b.ts', "import type { A } from '../core/a.js';"],
      ['sysfs/c.ts', "export { d } from './d.js';"],
      ['sysfs/d.ts', "export const d = 1;\nconst c = await import('./c.js');"],
      ['sysfs/e.ts', "import { e } from './e.js';"],
      ['net/f.ts', "import { z } from '../core/z.js';"],
      ['misc/g.ts', "import { d } from '../sysfs/d.js';"],
    ]),
  );

  it('report an edge against the rules, a package in core and a layer without a rule', () => {
    expect(ruleBreaks(tiny, RULES)).toEqual([
      'core/a.ts:1 -> sysfs/b.ts (core may import: nothing)',
      'core/a.ts:2 -> node:fs (core may import no package)',
      'misc/g.ts:1 -> sysfs/d.ts (misc has no rule)',
    ]);
  });

  it('report each cycle once, type-only and self-imports included', () => {
    expect(importCycles(tiny)).toEqual([
      'core/a.ts -> sysfs/b.ts -> core/a.ts',
      'sysfs/c.ts -> sysfs/d.ts -> sysfs/c.ts',
      'sysfs/e.ts -> sysfs/e.ts',
    ]);
  });

  it('report a relative import that names no file', () => {
    expect(tiny.unresolved).toEqual(['net/f.ts:1: ../core/z.js is no file of the tree']);
  });
});
