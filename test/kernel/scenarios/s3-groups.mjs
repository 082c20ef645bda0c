// Scenario 3: IOMMU groups. Assigning one ICH9 function alone is refused naming its siblings (they are
// on host drivers); `--with-group` takes the whole group; release gives all three back.
import fs from 'node:fs';
import { tables } from './s2-detach.mjs';

export const s3Groups = {
  name: 's3-groups',
  title: 'one ICH9 function alone is refused naming its siblings; --with-group assigns the group; release',
  async run(env) {
    await env.requireCommands('assign', 'release', 'status');
    const smbus = env.find('8086', '2930');
    if (!env.check('ICH9 SMBus present', smbus !== null)) return;
    const group = env.groupOf(smbus);
    const members = fs.readdirSync(env.p(`/sys/kernel/iommu_groups/${group}/devices`)).sort();
    const siblings = members.filter((m) => m !== smbus);
    const before = Object.fromEntries(members.map((m) => [m, env.driverOf(m)]));
    env.observe('group members and drivers', before);
    env.onCleanup(() => env.hostdev(['release', '--domain', 'vm3']), { onlyOnFailure: true });

    const alone = await env.hostdev(['assign', '--domain', 'vm3', smbus]);
    env.observe('assign alone', { exit: alone.code, error: alone.errorCode });
    env.check('assigning one function alone fails', alone.code !== 0);
    env.equal('error code', alone.errorCode, 'HOSTDEV_GROUP_CONFLICT');
    const message = alone.error?.message ?? '';
    env.check('the message names a sibling', siblings.some((s) => message.includes(s)), message);
    env.equal('drivers unchanged after the refusal', Object.fromEntries(members.map((m) => [m, env.driverOf(m)])), before);
    env.equal('tables unchanged after the refusal', await tables(env), { active: [], inactive: [] });

    const whole = await env.hostdev(['assign', '--domain', 'vm3', '--with-group', smbus]);
    const drivers = Object.fromEntries(members.map((m) => [m, env.driverOf(m)]));
    env.observe('assign --with-group', { exit: whole.code, error: whole.errorCode, drivers, vfioNode: env.vfioNode(group) });
    env.check('assign --with-group exits 0', whole.code === 0, whole.stderr);
    env.check('every member on vfio-pci', members.every((m) => drivers[m] === 'vfio-pci'), drivers);
    env.check(`/dev/vfio/${group} exists`, env.vfioNode(group));
    const t = await tables(env);
    env.observe('tables after assign', t);
    env.equal('active entries for vm3', t.active.map((e) => [e.address, e.usedBy?.domain]), members.map((m) => [m, 'vm3']));

    const release = await env.hostdev(['release', '--domain', 'vm3']);
    const back = await env.waitFor(() => members.every((m) => env.driverOf(m) === before[m]), { timeoutMs: 10_000 });
    const after = Object.fromEntries(members.map((m) => [m, env.driverOf(m)]));
    env.observe('release', { exit: release.code, error: release.errorCode, drivers: after, vfioNode: env.vfioNode(group) });
    env.check('release exits 0', release.code === 0, release.stderr);
    env.check('every member back on its driver', back, after);
    env.check(`/dev/vfio/${group} gone`, !env.vfioNode(group));
    env.equal('tables empty after release', await tables(env), { active: [], inactive: [] });
  },
};
