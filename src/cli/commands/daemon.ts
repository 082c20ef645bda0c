import path from 'node:path';
import type { Command } from 'commander';
import { globalOptions } from '../context.js';
import { openService } from '../open-manager.js';

export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description('serve the API on unix sockets: DIR/hostdev.sock (every request) and DIR/hostdev-ro.sock (GET/HEAD only)')
    .option('--socket-dir <dir>', 'where the sockets are created (default: $HOSTDEV_SOCKET_DIR or /run/hostdev; ignored under systemd socket activation)')
    .option('--metrics-listen <address:port>', 'also serve GET /metrics over TCP there: a loopback address only (127.0.0.1:9477, [::1]:9477)')
    .option('--drain <ms>', 'at SIGTERM, longest wait for operations under way', '30000')
    .action(async (_options: unknown, command: Command) => {
      const opts = command.opts<{ drain: string; socketDir?: string; metricsListen?: string }>();
      const globals = globalOptions(command);
      const [{ runDaemon }, { parseMetricsListen }] = await Promise.all([import('../../daemon/run.js'), import('../../daemon/metrics-listen.js')]);
      const metricsListen = opts.metricsListen === undefined ? undefined : parseMetricsListen(opts.metricsListen);
      process.exitCode = await runDaemon({
        socketDir: opts.socketDir ?? globals.socketDir,
        stateDir: globals.stateDir,
        serves: { root: path.resolve(globals.root), stateDir: path.resolve(globals.stateDir), simulate: globals.simulate },
        drainMs: Number(opts.drain),
        ...(metricsListen === undefined ? {} : { metricsListen }),
        open: (mode) => openService(globals, mode),
      });
    });
}
