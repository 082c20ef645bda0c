import type { Command } from 'commander';
import { globalOptions } from '../context.js';
import { openService } from '../open-manager.js';

export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description('serve the API on unix sockets: DIR/hostdev.sock (every request) and DIR/hostdev-ro.sock (GET/HEAD only)')
    .option('--socket-dir <dir>', 'where the sockets are created (ignored under systemd socket activation)', '/run/hostdev')
    .option('--drain <ms>', 'at SIGTERM, longest wait for operations under way', '30000')
    .action(async (_options: unknown, command: Command) => {
      const opts = command.opts<{ socketDir: string; drain: string }>();
      const globals = globalOptions(command);
      const { runDaemon } = await import('../../daemon/run.js');
      process.exitCode = await runDaemon({
        socketDir: opts.socketDir,
        stateDir: globals.stateDir,
        drainMs: Number(opts.drain),
        open: (mode) => openService(globals, mode),
      });
    });
}
