import type { HostdevServiceOptions } from '../service/hostdev-service.js';
import type { HostdevService } from '../service/hostdev-service.js';
import type { TableLookup } from '../manager/table-lookup.js';
import type { GlobalOptions } from './context.js';

// The service (SQLite, the kernel ports) is imported on first use, so that commands that do not
// need it (list, show, groups, sim) start without loading it.

/** How a command opens the service: a dry run changes nothing; a reader never waits for the state lock. */
interface OpenMode {
  readonly dryRun?: boolean;
  readonly reader?: boolean;
  /** For the daemon: inventory reads are kept until an operation or an event invalidates them. */
  readonly cacheInventory?: boolean;
  /** For the daemon: its QMP connection per VM answers whether a QMP holder lives, and carries its hot-plugs. */
  readonly probeQmp?: HostdevServiceOptions['probeQmp'];
  readonly connectQmp?: HostdevServiceOptions['connectQmp'];
}

/** The service as the global options say (the simulated kernel and host use with --simulate). */
export async function openService(globals: GlobalOptions, options: OpenMode = {}): Promise<HostdevService> {
  const [{ HostdevService }, { kernelPortFor }, { hostUsageFor }] = await Promise.all([
    import('../service/hostdev-service.js'),
    import('./kernel-port-for.js'),
    import('./host-usage-for.js'),
  ]);
  const kernel = await kernelPortFor(globals);
  return HostdevService.open({
    root: globals.root,
    stateDir: globals.stateDir,
    kernel,
    hostUsage: await hostUsageFor(globals),
    dryRun: options.dryRun ?? false,
    reader: options.reader ?? false,
    // The commands that look (status, qemu-args, vf list) walk every table entry; the ones that
    // change a device walk them only when the host changed since the last walk.
    reconcile: options.reader === true ? 'full' : 'changed',
    cacheInventory: options.cacheInventory ?? false,
    configDir: globals.configDir,
    ...(globals.command === '' ? {} : { command: globals.command }),
    detachedAfterReboot: globals.detachedAfterReboot,
    ...(options.probeQmp === undefined ? {} : { probeQmp: options.probeQmp }),
    ...(options.connectQmp === undefined ? {} : { connectQmp: options.connectQmp }),
  });
}

/** Opens, runs, closes. With `dryRun` the service changes nothing, recovery included. */
export async function withService<T>(
  globals: GlobalOptions,
  fn: (service: HostdevService) => Promise<T>,
  options: OpenMode = {},
): Promise<T> {
  const service = await openService(globals, options);
  // What recovery found on open goes to stderr like any warning, before the command's own output.
  const opened = service.warnings.length;
  for (const warning of service.warnings) process.stderr.write(`warning: ${warning}\n`);
  try {
    return await fn(service);
  } finally {
    // What the command itself found (a holder gone, seen by status or domains) after it.
    for (const warning of service.warnings.slice(opened)) process.stderr.write(`warning: ${warning}\n`);
    service.close();
  }
}

/**
 * Both tables for list, show and groups (owner, or detached by hostdev), best-effort: an unreadable
 * state directory drops the OWNER column instead of failing the listing.
 */
export async function managerTableLookup(globals: GlobalOptions): Promise<TableLookup | null> {
  try {
    const [{ tableLookupFor, withClaims }, { readClaims }] = await Promise.all([import('../manager/table-lookup.js'), import('../state/claim-files.js')]);
    const tables = await tableLookupFor(globals.stateDir, globals.root);
    const { claims } = await readClaims(globals.configDir).catch(() => ({ claims: [] }));
    return withClaims(tables, new Set<string>(claims.map((claim) => claim.address)));
  } catch {
    return null;
  }
}
