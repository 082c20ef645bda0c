// Scenario 19, issue 15's NVMe namespaces on the real kernel: libvirt's testNVMeDiskRoundtrip shape through
// hostdev's CLI. The rig's nvme controller has two namespaces (nvme-ns devices on small raw drives, see
// run.sh). Both go to vm11 (the controller leaves nvme for vfio-pci once, /dev/nvme0n1 and n2 go with
// it); vm12 asking for either is refused (the namespace held: HOSTDEV_IN_USE; the other namespace of the
// held controller: HOSTDEV_NVME_CONTROLLER_SHARED); releasing namespace 1 leaves the controller on vfio-pci,
// releasing namespace 2 gives it back to nvme and the block devices return. No nested guest is booted:
// `qemu-args` is observed, not run.

const DOMAIN = 'vm11';
const OTHER = 'vm12';

/** libvirt's CHECK_NVME_LIST_COUNT / CHECK_PCI_LIST_COUNT: active NVMe entries, active and inactive PCI entries. */
async function counts(env) {
  const r = await env.hostdev(['status']);
  env.check('hostdev status --json exits 0', r.code === 0 && r.json !== null, r.stderr);
  const s = r.json ?? {};
  return {
    nvme: (s.devices ?? []).filter((d) => d.kind === 'nvme').map((d) => `${d.key} ${d.usedBy?.domain ?? '-'}`).sort(),
    active: (s.active ?? []).map((e) => `${e.address} ${e.usedBy?.domain ?? '-'} ${e.originalDriver ?? '-'}`).sort(),
    inactive: (s.inactive ?? []).map((e) => e.address).sort(),
  };
}

/** Observes the counts as `step` and checks them against libvirt's [NVMe, active PCI, inactive PCI]. */
async function expectCounts(env, step, expected) {
  const c = await counts(env);
  env.observe(step, c);
  env.equal(`${step}: ${expected.join(', ')} (NVMe, active PCI, inactive PCI)`, [c.nvme.length, c.active.length, c.inactive.length], expected);
  return c;
}

/** What the host shows of the controller: its driver, its namespaces' block devices (sysfs and /dev). */
function host(env, controller) {
  const blocks = ['nvme0n1', 'nvme0n2'];
  return {
    driver: env.driverOf(controller),
    classBlock: blocks.filter((b) => env.exists(`/sys/class/block/${b}`)),
    dev: blocks.filter((b) => env.exists(`/dev/${b}`)),
  };
}

export const s19Nvme = {
  name: 's19-nvme',
  title: 'NVMe on Linux: two namespaces of one controller through libvirt\'s disk roundtrip (assign both, refuse a second domain, release one, then the other)',
  async run(env) {
    await env.requireCommands('assign', 'release', 'qemu-args', 'status', 'list');
    const controller = env.find('1b36', '0010');
    if (!env.check('the nvme controller is present', controller !== null)) return;
    const ns = (n) => `nvme:${controller}/${n}`;
    env.onCleanup(async () => {
      for (const domain of [DOMAIN, OTHER]) await env.hostdev(['release', '--domain', domain]);
    }, { onlyOnFailure: true });

    const ready = await env.waitFor(() => host(env, controller).dev.length === 2, { timeoutMs: 20_000 });
    env.check('the controller is on nvme with /dev/nvme0n1 and /dev/nvme0n2', ready && env.driverOf(controller) === 'nvme', host(env, controller));
    const list = await env.hostdev(['list', '--kind', 'nvme']);
    const namespaces = (Array.isArray(list.json) ? list.json : []).map((d) => ({
      key: d.key, controller: d.controller, nsid: d.nsid, blockDevice: d.blockDevice, sectors: d.sectors, model: d.model, serial: d.serial, owner: d.owner,
    }));
    env.observe('s19 list --kind nvme', { exit: list.code, namespaces });
    env.equal('list --kind nvme shows both namespaces by key', namespaces.map((d) => d.key), [ns(1), ns(2)]);
    env.observe('s19 counts before', await counts(env));

    const assign = await env.hostdev(['assign', '--domain', DOMAIN, ns(1), ns(2)]);
    env.check(`assign --domain ${DOMAIN} ${ns(1)} ${ns(2)} exits 0`, assign.code === 0, assign.stderr);
    const gone = await env.waitFor(() => host(env, controller).dev.length === 0, { timeoutMs: 10_000 });
    const afterAssign = { exit: assign.code, assigned: assign.json?.assigned ?? null, controllers: assign.json?.controllers ?? null, notes: assign.json?.notes ?? null, host: host(env, controller) };
    env.observe('s19 assign both namespaces', afterAssign);
    env.check('the controller is on vfio-pci and the block devices left', gone && afterAssign.host.driver === 'vfio-pci', afterAssign.host);
    const c1 = await expectCounts(env, 's19 counts after assign', [2, 1, 0]);
    const hidden = await env.hostdev(['list', '--kind', 'nvme']);
    env.observe('s19 list --kind nvme while assigned', { exit: hidden.code, keys: (Array.isArray(hidden.json) ? hidden.json : []).map((d) => d.key) });

    const args = await env.hostdev(['qemu-args', '--domain', DOMAIN]);
    env.observe('s19 qemu-args', { exit: args.code, argv: args.json });
    env.check('qemu-args gives an nvme -blockdev per namespace', Array.isArray(args.json) && [1, 2].every((n) => args.json.some((a) => a.includes('"driver":"nvme"') && a.includes(`"namespace":${n}`) && a.includes(controller))), args.json);

    const held = await env.hostdev(['assign', '--domain', OTHER, ns(1)]);
    const shared = await env.hostdev(['assign', '--domain', OTHER, ns(2), '--dry-run']);
    const refusals = { held: { exit: held.code, error: held.errorCode, message: held.error?.message ?? null }, ns2DryRun: { exit: shared.code, error: shared.errorCode } };
    env.observe(`s19 ${OTHER} refused`, refusals);
    env.equal(`${OTHER} asking for namespace 1 (held by ${DOMAIN}): HOSTDEV_IN_USE`, held.errorCode, 'HOSTDEV_IN_USE');
    env.check(`${OTHER} asking for namespace 2 (also ${DOMAIN}'s) is refused`, shared.code !== 0 && ['HOSTDEV_IN_USE', 'HOSTDEV_NVME_CONTROLLER_SHARED'].includes(shared.errorCode), shared.stderr);
    env.equal('the refusals change nothing', await counts(env), c1);

    const release1 = await env.hostdev(['release', '--domain', DOMAIN, ns(1)]);
    const afterRelease1 = { exit: release1.code, released: release1.json?.released ?? null, controllers: release1.json?.controllers ?? null, host: host(env, controller) };
    env.observe('s19 release namespace 1', afterRelease1);
    env.check('release of namespace 1 exits 0', release1.code === 0, release1.stderr);
    env.equal('the controller stays on vfio-pci (namespace 2 is still vm11\'s)', afterRelease1.host.driver, 'vfio-pci');
    await expectCounts(env, 's19 counts after release 1', [1, 1, 0]);

    const release2 = await env.hostdev(['release', '--domain', DOMAIN, ns(2)]);
    env.check('release of namespace 2 exits 0', release2.code === 0, release2.stderr);
    const back = await env.waitFor(() => host(env, controller).dev.length === 2, { timeoutMs: 20_000 });
    const afterRelease2 = { exit: release2.code, released: release2.json?.released ?? null, controllers: release2.json?.controllers ?? null, host: host(env, controller) };
    env.observe('s19 release namespace 2', afterRelease2);
    env.check('the controller is back on nvme with /dev/nvme0n1 and /dev/nvme0n2', back && afterRelease2.host.driver === 'nvme', afterRelease2.host);
    await expectCounts(env, 's19 counts after release 2', [0, 0, 0]);
    const relist = await env.hostdev(['list', '--kind', 'nvme']);
    env.equal('list --kind nvme shows both namespaces again', (Array.isArray(relist.json) ? relist.json : []).map((d) => d.key), [ns(1), ns(2)]);
  },
};
