// Scenario 1: `hostdev list --json` agrees with lspci -Dnnk (address, class, vendor:device, driver)
// and with the tree's own links (IOMMU groups, SR-IOV physfn/virtfnN), with 2 igb VFs present.
import fs from 'node:fs';

export function parseLspci(text) {
  const out = new Map();
  let cur = null;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) .*?\[([0-9a-f]{4})\]: /.exec(line);
    if (head) {
      const ids = [...line.matchAll(/\[([0-9a-f]{4}):([0-9a-f]{4})\]/g)].pop();
      cur = { address: head[1], class: head[2], vendor: ids?.[1] ?? null, device: ids?.[2] ?? null, driver: null };
      out.set(cur.address, cur);
      continue;
    }
    const drv = /^\s+Kernel driver in use: (\S+)/.exec(line);
    if (drv && cur) cur.driver = drv[1];
  }
  return out;
}

export function igbPf(env) {
  const pf = env.find('8086', '10c9');
  if (!pf) throw new Error('no igb PF (8086:10c9) in this host');
  return pf;
}

/** Creates n VFs on the PF with a raw kernel write and waits until they are on their driver. */
export async function makeVfs(env, pf, n, vfDriver = 'igbvf') {
  const w = await env.kernelWrite(`/sys/bus/pci/devices/${pf}/sriov_numvfs`, n);
  const vfs = await env.waitFor(() => {
    const v = env.virtfns(pf);
    return v.length === n && v.every((a) => env.driverOf(a) === vfDriver) ? v : null;
  });
  return { write: w, vfs: vfs ?? env.virtfns(pf) };
}

export const s1List = {
  name: 's1-list',
  title: 'hostdev list --json agrees with lspci -Dnnk and the sysfs links (groups, SR-IOV, drivers)',
  async run(env) {
    await env.requireCommands('list');
    const pf = igbPf(env);
    const { write, vfs } = await makeVfs(env, pf, 2);
    env.onCleanup(() => env.kernelWrite(`/sys/bus/pci/devices/${pf}/sriov_numvfs`, 0));
    env.check('echo 2 > sriov_numvfs on the igb PF', write.ok, write);
    env.check('2 VFs on igbvf', vfs.length === 2 && vfs.every((v) => env.driverOf(v) === 'igbvf'), vfs);

    const r = await env.hostdev(['list']);
    env.check('hostdev list --json exits 0', r.code === 0, r.stderr);
    const list = Array.isArray(r.json) ? r.json : [];
    const lspci = parseLspci(await env.lspci());
    const before = env.checks.length;
    env.equal('same addresses as lspci', list.map((d) => d.address).sort(), [...lspci.keys()].sort());
    for (const d of list) {
      const l = lspci.get(d.address);
      if (!l) continue;
      const mine = { class: d.class, vendor: d.vendor, device: d.device, driver: d.driver };
      const theirs = { class: l.class, vendor: l.vendor, device: l.device, driver: l.driver };
      if (JSON.stringify(mine) !== JSON.stringify(theirs)) env.equal(`${d.address} agrees with lspci`, mine, theirs);
      if (d.iommuGroup !== env.groupOf(d.address)) env.equal(`${d.address} IOMMU group`, d.iommuGroup, env.groupOf(d.address));
      const physfn = env.exists(`/sys/bus/pci/devices/${d.address}/physfn`)
        ? fs.readlinkSync(env.p(`/sys/bus/pci/devices/${d.address}/physfn`)).split('/').pop() : null;
      if (d.physfn !== physfn) env.equal(`${d.address} physfn`, d.physfn, physfn);
      const virtfns = env.virtfns(d.address);
      if (JSON.stringify(d.virtfns) !== JSON.stringify(virtfns)) env.equal(`${d.address} virtfns`, d.virtfns, virtfns);
    }
    env.check('every device agrees with lspci, its group and SR-IOV links', env.checks.slice(before).every((c) => c.ok));
    const pfEntry = list.find((d) => d.address === pf);
    env.equal('igb PF sriov', pfEntry?.sriov, { totalVfs: 7, numVfs: 2 });
    env.equal('igb PF virtfns in index order', pfEntry?.virtfns, vfs);
    // IOMMU groups: hostdev's grouping equals the kernel's iommu_groups directories
    const groups = new Map();
    for (const d of list) if (d.iommuGroup !== null) groups.set(d.iommuGroup, [...(groups.get(d.iommuGroup) ?? []), d.address].sort());
    let groupsAgree = true;
    for (const [g, members] of groups) {
      const kernel = fs.readdirSync(env.p(`/sys/kernel/iommu_groups/${g}/devices`)).sort();
      if (JSON.stringify(kernel) !== JSON.stringify(members)) groupsAgree = env.equal(`group ${g} members`, members, kernel);
    }
    env.check('IOMMU group membership agrees with /sys/kernel/iommu_groups', groupsAgree);
    // The stub driver hostdev picks without --driver: the kernel's modules.alias has only vfio_pci's
    // catch-all here (no variant module in the guest), and the modalias hostdev spells is the kernel's.
    const nic = env.find('8086', '10d3');
    const shown = nic ? await env.hostdev(['show', nic]) : null;
    const kernelModalias = nic ? fs.readFileSync(env.p(`/sys/bus/pci/devices/${nic}/modalias`), 'utf8').trim() : null;
    env.check('hostdev show --json of the e1000e exits 0', shown?.code === 0, shown?.stderr);
    env.equal("show's modalias is the kernel's modalias file", shown?.json?.modalias, kernelModalias);
    const stub = { driver: shown?.json?.vfioStub?.driver, fromModulesAlias: typeof shown?.json?.vfioStub?.modulesAlias === 'string' };
    env.equal('the e1000e would go to vfio-pci, looked up in modules.alias', stub, { driver: 'vfio-pci', fromModulesAlias: true });
    env.observe('show e1000e: stub driver', { ...stub, modaliasIsKernels: shown?.json?.modalias === kernelModalias });
    env.observe('list', list.map((d) => ({
      address: d.address, vendor: d.vendor, device: d.device, class: d.class, driver: d.driver,
      driverOverride: d.driverOverride, iommuGroup: d.iommuGroup, headerType: d.headerType, parent: d.parent,
      physfn: d.physfn, virtfns: d.virtfns, sriov: d.sriov, resetMethods: d.resetMethods,
    })));
  },
};
