import type { Command } from 'commander';
import { withService } from '../open-manager.js';
import { action } from '../run-action.js';

const DEFAULT_PLUGIN_DIR = '/var/lib/kubelet/device-plugins';

export function registerKubeletPlugin(program: Command): void {
  program
    .command('kubelet-plugin')
    .description("offer device pools to the kubelet (device plugin v1beta1), one socket per pool, until SIGTERM; --teardown gives the pools' devices back")
    .requiredOption('--config <file>', 'the pools (YAML or JSON): names, resource names and selectors')
    .option('--plugin-dir <dir>', "the kubelet's device-plugins directory", DEFAULT_PLUGIN_DIR)
    .option('--teardown', "give every pool's devices back to their host drivers and exit")
    .action(
      action(async (globals, command: Command) => {
        const opts = command.opts<{ config: string; pluginDir: string; teardown?: boolean }>();
        const [{ readPoolConfig }, { runKubeletPlugin, teardownPools }] = await Promise.all([import('../../k8s/pool-config.js'), import('../../k8s/kubelet-plugin.js')]);
        const pools = readPoolConfig(opts.config);
        const log = (line: string): void => void process.stderr.write(`${line}\n`);
        if (opts.teardown) {
          await withService(globals, (service) => teardownPools(service, pools, log));
          return { json: { pools: pools.map((p) => p.name) }, text: '' };
        }
        const stop = new AbortController();
        for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop.abort());
        await withService(globals, (service) => runKubeletPlugin({ service, pools, pluginDir: opts.pluginDir, signal: stop.signal, log }));
        return { json: { pools: pools.map((p) => p.name) }, text: 'kubelet plugin stopped' };
      }),
    );
}
