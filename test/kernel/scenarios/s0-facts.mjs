// Scenario 0 (real kernel only): the guest has what the other scenarios need, and its PCI facts are
// recorded in the transcript (the simulator's q35-guest spec is written from them).
import fs from 'node:fs';
import { NODE_FLAGS, run } from './lib.mjs';

const ATTRS = ['vendor', 'device', 'subsystem_vendor', 'subsystem_device', 'class', 'revision', 'reset_method',
  'sriov_totalvfs', 'sriov_numvfs', 'sriov_offset', 'sriov_stride', 'sriov_vf_device', 'sriov_drivers_autoprobe',
  'driver_override', 'numa_node'];

export const s0Facts = {
  name: 's0-facts',
  title: 'the guest has an IOMMU, e1000e, igb (SR-IOV), nvme, edu and the ICH9 group; facts recorded',
  kernelOnly: true,
  async run(env) {
    const groups = fs.readdirSync(env.p('/sys/kernel/iommu_groups')).map(Number).sort((a, b) => a - b);
    env.check('IOMMU groups exist', groups.length > 0, groups.length);
    const devices = env.devices().map((address) => {
      const facts = { address, path: fs.realpathSync(env.p(`/sys/bus/pci/devices/${address}`)).replace(/^\/sys\/devices\//, '') };
      for (const a of ATTRS) {
        const v = env.read(`/sys/bus/pci/devices/${address}/${a}`);
        if (v !== null) facts[a] = v;
      }
      facts.driver = env.driverOf(address);
      facts.iommuGroup = env.groupOf(address);
      facts.netdevs = fs.existsSync(env.p(`/sys/bus/pci/devices/${address}/net`))
        ? fs.readdirSync(env.p(`/sys/bus/pci/devices/${address}/net`)) : [];
      return facts;
    });
    env.observe('devices', devices);
    env.observe('drivers', fs.readdirSync(env.p('/sys/bus/pci/drivers')).sort());
    env.observe('uname', fs.readFileSync('/proc/version', 'utf8').trim());
    const byId = (v, d) => devices.filter((x) => x.vendor === `0x${v}` && x.device === `0x${d}`);
    env.check('one e1000e (8086:10d3) on e1000e', byId('8086', '10d3')[0]?.driver === 'e1000e');
    const igb = byId('8086', '10c9')[0];
    env.check('one igb PF (8086:10c9) on igb with 7 VFs possible', igb?.driver === 'igb' && igb?.sriov_totalvfs === '7', igb);
    env.check('edu (1234:11e8) has no driver', byId('1234', '11e8')[0] && byId('1234', '11e8')[0].driver === null);
    env.check('nvme (1b36:0010) on nvme', byId('1b36', '0010')[0]?.driver === 'nvme');
    const ich9 = devices.filter((x) => x.address.startsWith('0000:00:1f.'));
    const ich9Groups = new Set(ich9.map((x) => x.iommuGroup));
    env.check('the ICH9 functions share one IOMMU group', ich9.length === 3 && ich9Groups.size === 1, ich9);
    env.check('every device has an IOMMU group', devices.every((x) => x.iommuGroup !== null));
    for (const x of devices) {
      const members = fs.readdirSync(env.p(`/sys/kernel/iommu_groups/${x.iommuGroup}/devices`));
      if (!members.includes(x.address)) env.check(`${x.address} listed in its group`, false, members);
    }
    env.check('lspci runs', (await env.lspci()).includes(igb?.address ?? '????'));
    const qemu = await run('/usr/bin/qemu-system-x86_64', ['--version']);
    env.check('qemu-system-x86_64 runs in the guest', qemu.code === 0, qemu.stderr);
    // what one CLI call costs under TCG (every scenario step is one)
    const bare = await run(process.execPath, ['-e', '0']);
    const help = await run(process.execPath, [...NODE_FLAGS, env.bin, '--help']);
    env.log(`  timing: node -e 0 ${bare.ms} ms; hostdev --help ${help.ms} ms; qemu --version ${qemu.ms} ms`);
  },
};
