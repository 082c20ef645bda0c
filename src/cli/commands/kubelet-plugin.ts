import { hostname } from 'node:os';
import type { Command } from 'commander';
import { withService } from '../open-manager.js';
import { HostdevError } from '../../core/errors.js';
import { waitMs } from '../manager-view.js';
import { action } from '../run-action.js';

const DEFAULT_PLUGIN_DIR = '/var/lib/kubelet/device-plugins';
const DEFAULT_POD_RESOURCES = '/var/lib/kubelet/pod-resources/kubelet.sock';

export function registerKubeletPlugin(program: Command): void {
  program
    .command('kubelet-plugin')
    .description("offer device pools to the kubelet (device plugin v1beta1), one socket per pool, until SIGTERM; --teardown gives the pools' devices back")
    .requiredOption('--config <file>', 'the pools (YAML or JSON): names, resource names and selectors')
    .option('--plugin-dir <dir>', "the kubelet's device-plugins directory", DEFAULT_PLUGIN_DIR)
    .option('--pod-resources-socket <path>', "the kubelet's PodResources socket: which container holds which device", DEFAULT_POD_RESOURCES)
    .option('--pod-grace <ms>', 'how long a device must be missing from the kubelet\'s answers before it goes back to its pool; default 10000')
    .option('--cdi-dir <dir>', "write CDI specs there (the runtime's CDI directory, e.g. /var/run/cdi) and allocate CDI devices instead of device nodes")
    .option('--dra', 'also run the DRA driver hostdev.io: ResourceSlices for the pools, prepared claims (needs --cdi-dir)')
    .option('--node-name <name>', 'the node the ResourceSlices are for (default: $NODE_NAME, else the host name)')
    .option('--kubelet-dir <dir>', "the kubelet's root directory (plugins_registry/ and plugins/ are in it)", '/var/lib/kubelet')
    .option('--kubeconfig <file>', 'how the DRA driver reaches the API server (default: the pod\'s service account)')
    .option('--teardown', "give every pool's devices back to their host drivers and exit (devices containers hold stay theirs)")
    .action(
      action(async (globals, command: Command) => {
        const opts = command.opts<{ config: string; pluginDir: string; podResourcesSocket: string; podGrace?: string; cdiDir?: string; dra?: boolean; nodeName?: string; kubeletDir: string; kubeconfig?: string; teardown?: boolean }>();
        const podGoneGraceMs = waitMs(opts.podGrace, '10000', '--pod-grace');
        if (opts.dra === true && opts.cdiDir === undefined) {
          throw new HostdevError('HOSTDEV_USAGE', '--dra needs --cdi-dir: a prepared claim names its devices as CDI devices', {
            hint: "Add --cdi-dir with the container runtime's CDI directory (e.g. /var/run/cdi).",
          });
        }
        const [{ readPoolConfig }, { runKubeletPlugin, teardownPools }] = await Promise.all([import('../../k8s/pool-config.js'), import('../../k8s/kubelet-plugin.js')]);
        const pools = readPoolConfig(opts.config);
        const log = (line: string): void => void process.stderr.write(`${line}\n`);
        if (opts.teardown) {
          await withService(globals, (service) => teardownPools(service, pools, log, opts.cdiDir));
          return { json: { pools: pools.map((p) => p.name) }, text: '' };
        }
        const stop = new AbortController();
        for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop.abort());
        await withService(globals, (service) => runKubeletPlugin({
            service,
            pools,
            pluginDir: opts.pluginDir,
            podResourcesSocket: opts.podResourcesSocket,
            ...(opts.cdiDir === undefined ? {} : { cdiDir: opts.cdiDir }),
            ...(opts.dra === true
              ? {
                  dra: {
                    nodeName: opts.nodeName ?? process.env['NODE_NAME'] ?? hostname(),
                    kubeletDir: opts.kubeletDir,
                    ...(opts.kubeconfig === undefined ? {} : { kubeconfig: opts.kubeconfig }),
                  },
                }
              : {}),
            ...(podGoneGraceMs === undefined ? {} : { podGoneGraceMs }),
            signal: stop.signal,
            log,
          }),);
        return { json: { pools: pools.map((p) => p.name) }, text: 'kubelet plugin stopped' };
      }),
    );
}
