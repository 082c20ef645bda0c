import path from 'node:path';
import type { Command } from 'commander';
import { globalOptions } from '../context.js';
import { openService } from '../open-manager.js';

export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description('serve the API on unix sockets: DIR/hostdev.sock (every request) and DIR/hostdev-ro.sock (GET/HEAD only)')
    .option('--socket-dir <dir>', 'where the sockets are created (default: $HOSTDEV_SOCKET_DIR or /run/hostdev; ignored under systemd socket activation)')
    .option('--drain <ms>', 'at SIGTERM, longest wait for operations under way', '30000')
    .action(async (_options: unknown, command: Command) => {
      const opts = command.opts<{ drain: string; socketDir?: string }>();
      const globals = globalOptions(command);
      const { runDaemon } = await import('../../daemon/run.js');
      process.exitCode = await runDaemon({
        socketDir: opts.socketDir ?? globals.socketDir,
        stateDir: globals.stateDir,
        serves: { root: path.resolve(globals.root), stateDir: path.resolve(globals.stateDir), simulate: globals.simulate },
        drainMs: Number(opts.drain),
        open: (mode) => openService(globals, mode),
      });
    });
}
