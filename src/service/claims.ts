import path from 'node:path';
import type { PciAddress } from '../core/address.js';
import {
  CLAIM_OWNER_NAME,
  claimIdentityOf,
  claimMismatch,
  formatMatch,
  matchesClaim,
  notClaimed,
  parseMatch,
  udevRules,
  UDEV_RULES_FILE,
  type Claim,
  type ClaimMatch,
  type FoundDevice,
} from '../core/claims.js';
import { identityOf, NO_SERIALS, type DeviceSerials } from '../core/hardware-identity.js';
import { parsePciRef, pciKey, type DeviceKey, type DeviceRef } from '../core/device-key.js';
import type { PciDevice } from '../core/device.js';
import { HostdevError, isHostdevError } from '../core/errors.js';
import { notFound } from '../core/plan-errors.js';
import { ownerName, TableIndex, type Tables } from '../core/tables.js';
import type { DeviceWait } from '../manager/host-reader.js';
import type { DetachOptions, OperationMode } from '../manager/hostdev-manager.js';
import type { OperationReport } from '../manager/reports.js';
import { readClaims, removeClaim, writeClaim, writeWhole } from '../state/claim-files.js';
import type { SysfsLayout } from '../sysfs/paths.js';
import { readDevicesBounded, readTimeoutFromEnv } from '../sysfs/bounded-inventory.js';

export interface ClaimRequest {
  /** The stub driver (default: as detach picks it, the device's vfio-pci variant or vfio-pci). */
  readonly driver?: string;
  /** VENDOR:DEVICE the device must be (default: what is at the address now). */
  readonly match?: string;
  readonly force?: boolean;
  readonly dryRun?: boolean;
  readonly wait?: DeviceWait;
}

export interface ClaimReport {
  readonly claim: Claim;
  readonly owner: string;
  readonly dryRun: boolean;
  /** The claim's definition file, and the udev rules written again from every claim. */
  readonly file: string;
  readonly udevRules: string;
  /** The detach that put the device on its stub now. */
  readonly detach: OperationReport;
}

export interface UnclaimReport {
  readonly claim: Claim;
  readonly dryRun: boolean;
  readonly file: string;
  readonly udevRules: string;
  /** The reattach that gave the device back (null: it was in no inactive entry, or not on the host). */
  readonly reattach: OperationReport | null;
  readonly notes: readonly string[];
}

export type ClaimState = 'applied' | 'pending' | 'absent' | 'mismatch' | 'held';

export interface ClaimStatus {
  readonly key: DeviceKey;
  readonly address: PciAddress;
  readonly driver: string;
  readonly match: string;
  readonly owner: string;
  /** applied: on its stub, in the inactive table; pending: `claims apply` would bind it; absent: no device there;
   *  mismatch: another card is there (never bound); held: a domain holds it (active table). */
  readonly state: ClaimState;
  /** What is at the address now (vendor:device, driver), null when nothing is. */
  readonly found: { readonly ids: string; readonly driver: string | null } | null;
}

/** recorded: already on its stub (the boot's udev rule or initramfs script put it there), now in the inactive table too. */
export type ApplyOutcome = 'bound' | 'would-bind' | 'recorded' | 'already' | 'absent' | 'mismatch' | 'held' | 'failed';

export interface ApplyItem {
  readonly key: DeviceKey;
  readonly address: PciAddress;
  readonly driver: string;
  readonly match: string;
  readonly outcome: ApplyOutcome;
  readonly detail: string;
  readonly error: { readonly code: string; readonly message: string; readonly hint: string | null } | null;
}

export interface ApplyReport {
  readonly dryRun: boolean;
  readonly claims: readonly ApplyItem[];
  readonly warnings: readonly string[];
}

/** What the claims need of the service: its detach and reattach, its tables, where the host is. */
export interface ClaimsContext {
  readonly layout: SysfsLayout;
  readonly configDir: string;
  readonly tables: () => Tables;
  readonly detach: (address: PciAddress, options: DetachOptions) => Promise<OperationReport>;
  readonly reattach: (address: PciAddress, options: OperationMode & { readonly force?: boolean }) => Promise<OperationReport>;
  /** The serials (DSN, VPD) of devices, read in the bounded reader. */
  readonly serials: (addresses: readonly PciAddress[]) => Promise<Map<PciAddress, DeviceSerials>>;
}

/** A device at a claimed address: as read, and its identity with serials. */
type Found = FoundDevice & { readonly device: PciDevice };

/** Where `claims write-udev` writes by default: ROOT/etc/udev/rules.d/70-hostdev-claims.rules. */
export function udevRulesPath(root: string): string {
  return path.join(root, 'etc/udev/rules.d', UDEV_RULES_FILE);
}

/**
 * Claims from boot: `claim` (define and detach now), `unclaim` (reattach and forget), `list`, and
 * `apply`, which the boot units run: each claimed device that is there and is what the claim was
 * made for goes onto its stub through the ordinary detach; nothing else is touched.
 */
export class Claims {
  constructor(private readonly ctx: ClaimsContext) {}

  async claim(ref: DeviceRef, request: ClaimRequest = {}): Promise<ClaimReport> {
    const address = parsePciRef(ref);
    const dryRun = request.dryRun ?? false;
    const found = (await this.read([address], request.wait)).get(address) ?? null;
    if (found === null) throw notFound(address);
    const match = request.match !== undefined ? parseMatch(request.match) : idsOf(found.device);
    if (!matchesClaim({ match }, found)) throw claimMismatch(address, { match }, found, false);
    const detach = await this.ctx.detach(address, {
      ...(request.driver === undefined ? {} : { stubDriver: request.driver }),
      force: request.force ?? false,
      dryRun,
      ...(request.wait === undefined ? {} : { wait: request.wait }),
    });
    const parked = detach.changes.find((change) => change.kind === 'set-inactive');
    const driver = parked?.kind === 'set-inactive' ? parked.entry.stubDriver : (request.driver ?? 'vfio-pci');
    // The claim keeps what else tells this card from another of its model: subsystem IDs, class, serials.
    const claim: Claim = { key: pciKey(address), address, driver, match, identity: claimIdentityOf(found.hardware) };
    const others = (await readClaims(this.ctx.configDir)).claims.filter((c) => c.address !== address);
    const file = dryRun ? path.join(this.ctx.configDir, 'claims.d', `pci-${address}`) : await writeClaim(this.ctx.configDir, claim);
    const rules = await this.writeUdevRules([...others, claim], dryRun);
    return { claim, owner: CLAIM_OWNER_NAME, dryRun, file, udevRules: rules, detach };
  }

  async unclaim(ref: DeviceRef, request: { readonly dryRun?: boolean; readonly wait?: DeviceWait } = {}): Promise<UnclaimReport> {
    const address = parsePciRef(ref);
    const dryRun = request.dryRun ?? false;
    const claims = (await readClaims(this.ctx.configDir)).claims;
    const claim = claims.find((c) => c.address === address);
    if (claim === undefined) throw notClaimed(address);
    const located = new TableIndex(this.ctx.tables()).find(address);
    const device = (await this.read([address], request.wait)).get(address) ?? null;
    const notes: string[] = [];
    let reattach: OperationReport | null = null;
    if (located?.table === 'active') notes.push(`${address} stays with ${ownerName(located.entry.usedBy)}, which holds it; only the claim is removed`);
    else if (device === null) notes.push(`${address} is not on this host: only the claim is removed`);
    else if (located?.table === 'inactive' && matchesClaim(claim, device)) {
      reattach = await this.ctx.reattach(address, { dryRun, ...(request.wait === undefined ? {} : { wait: request.wait }) });
    } else notes.push(`${address} is in no inactive entry (or is not the claimed ${formatMatch(claim.match)}): left as it is`);
    const file = dryRun ? path.join(this.ctx.configDir, 'claims.d', `pci-${address}`) : await removeClaim(this.ctx.configDir, address);
    const rules = await this.writeUdevRules(claims.filter((c) => c.address !== address), dryRun);
    return { claim, dryRun, file, udevRules: rules, reattach, notes };
  }

  /** Every claim and where its device stands now. */
  async list(wait?: DeviceWait): Promise<{ readonly claims: readonly ClaimStatus[]; readonly warnings: readonly string[] }> {
    const { claims, warnings } = await readClaims(this.ctx.configDir);
    const found = await this.read(claims.map((c) => c.address), wait);
    const index = new TableIndex(this.ctx.tables());
    return {
      claims: claims.map((claim) => {
        const device = found.get(claim.address) ?? null;
        return {
          key: claim.key,
          address: claim.address,
          driver: claim.driver,
          match: formatMatch(claim.match),
          owner: CLAIM_OWNER_NAME,
          state: stateOf(claim, device, index),
          found: device === null ? null : { ids: `${device.hardware.vendor ?? '????'}:${device.hardware.device ?? '????'}`, driver: device.driver },
        };
      }),
      warnings,
    };
  }

  /**
   * What the boot units run: every claimed device that is there, is the card the claim was made
   * for and no domain holds goes onto its stub (a detach: inactive table); one already there is
   * left as it is. Idempotent. Reads are bounded; each detach waits at most `wait`.
   */
  async apply(request: { readonly dryRun?: boolean; readonly wait?: DeviceWait } = {}): Promise<ApplyReport> {
    const dryRun = request.dryRun ?? false;
    const { claims, warnings } = await readClaims(this.ctx.configDir);
    const found = await this.read(claims.map((c) => c.address), request.wait);
    const items: ApplyItem[] = [];
    for (const claim of claims) {
      const device = found.get(claim.address) ?? null;
      const index = new TableIndex(this.ctx.tables());
      const base = { key: claim.key, address: claim.address, driver: claim.driver, match: formatMatch(claim.match) };
      const state = stateOf(claim, device, index);
      if (device === null) {
        items.push({ ...base, outcome: 'absent', detail: `no device at ${claim.address}`, error: null });
      } else if (state === 'mismatch') {
        const error = claimMismatch(claim.address, claim, device);
        const undone = await this.undoBootBind(claim, device, index, dryRun, request.wait);
        items.push({ ...base, outcome: 'mismatch', detail: undone === null ? error.message : `${error.message}; ${undone}`, error: errorJson(error) });
      } else if (state === 'held') {
        const owner = index.active(claim.address)!.usedBy;
        items.push({ ...base, outcome: 'held', detail: `held by ${ownerName(owner)}: left as it is`, error: null });
      } else if (state === 'applied') {
        items.push({ ...base, outcome: 'already', detail: `on ${claim.driver}, in the inactive table`, error: null });
      } else {
        items.push(await this.bind(claim, device.device, dryRun, request.wait));
      }
    }
    return { dryRun, claims: items, warnings };
  }

  /** Writes the udev rules from every claim (ROOT/etc/udev/rules.d/70-hostdev-claims.rules unless `output`). */
  async writeUdev(output?: string): Promise<{ readonly path: string; readonly claims: number; readonly text: string }> {
    const { claims } = await readClaims(this.ctx.configDir);
    const file = output ?? udevRulesPath(this.ctx.layout.root);
    const text = udevRules(claims);
    await writeWhole(file, text);
    return { path: file, claims: claims.length, text };
  }

  private async writeUdevRules(claims: readonly Claim[], dryRun: boolean): Promise<string> {
    const file = udevRulesPath(this.ctx.layout.root);
    if (!dryRun) await writeWhole(file, udevRules(claims));
    return file;
  }

  /**
   * The udev rule matches what udev can read (IDs, subsystem IDs, class), not the serials: a card of
   * the claim's model with another serial is bound to the claim's driver at boot. Such a device (its
   * driver_override set to the claim's driver, no domain holding it) is given back to its host driver,
   * so a claim does not keep a card it was not made for. What was done, or null when nothing was.
   */
  private async undoBootBind(claim: Claim, found: Found, index: TableIndex, dryRun: boolean, wait: DeviceWait | undefined): Promise<string | null> {
    const { device } = found;
    if (device.driver !== claim.driver || device.driverOverride !== claim.driver || index.active(claim.address) !== undefined) return null;
    try {
      // Forced: the inactive entry, if any, is the claim's own, made for the card that is not there.
      await this.ctx.reattach(claim.address, { dryRun, force: true, ...(wait === undefined ? {} : { wait }) });
    } catch (error) {
      if (!isHostdevError(error)) throw error;
      return `the claim's udev rule bound it to ${claim.driver} at boot, and giving it back failed: ${error.message}`;
    }
    if (dryRun) return `the claim's udev rule bound it to ${claim.driver} at boot: it would be given back to its host driver`;
    const now = (await this.readDevices([claim.address], wait)).get(claim.address) ?? null;
    return `the claim's udev rule bound it to ${claim.driver} at boot: given back to ${now?.driver ?? 'no driver'}`;
  }

  private async bind(claim: Claim, device: PciDevice, dryRun: boolean, wait: DeviceWait | undefined): Promise<ApplyItem> {
    const base = { key: claim.key, address: claim.address, driver: claim.driver, match: formatMatch(claim.match) };
    try {
      await this.ctx.detach(claim.address, { stubDriver: claim.driver, force: false, dryRun, fromBoot: true, ...(wait === undefined ? {} : { wait }) });
      if (device.driver === claim.driver) {
        return { ...base, outcome: 'recorded', detail: `on ${claim.driver} since boot; ${dryRun ? 'would be' : 'now'} in the inactive table`, error: null };
      }
      const from = device.driver === null ? 'no driver' : device.driver;
      return { ...base, outcome: dryRun ? 'would-bind' : 'bound', detail: `${dryRun ? 'would go' : 'went'} from ${from} to ${claim.driver}`, error: null };
    } catch (error) {
      if (!isHostdevError(error)) throw error;
      return { ...base, outcome: 'failed', detail: error.message, error: errorJson(error) };
    }
  }

  /** The devices at these addresses (null: not on the host), read bounded. */
  private readDevices(addresses: readonly PciAddress[], wait: DeviceWait | undefined): Promise<Map<PciAddress, PciDevice | null>> {
    return readDevicesBounded(this.ctx.layout, addresses, {
      timeoutMs: wait?.timeoutMs ?? readTimeoutFromEnv(),
      ...(wait?.onSlow === undefined ? {} : { onSlow: wait.onSlow }),
    });
  }

  /** The devices with their card's identity (IDs and serials: config space and VPD read too). */
  private async read(addresses: readonly PciAddress[], wait: DeviceWait | undefined): Promise<Map<PciAddress, Found | null>> {
    const devices = await this.readDevices(addresses, wait);
    const present = [...devices].flatMap(([address, device]) => (device === null ? [] : [address]));
    const serials = present.length === 0 ? new Map<PciAddress, DeviceSerials>() : await this.ctx.serials(present);
    return new Map(
      [...devices].map(([address, device]) => [
        address,
        device === null ? null : { device, driver: device.driver, hardware: identityOf(device, serials.get(address) ?? NO_SERIALS) },
      ]),
    );
  }
}

function idsOf(device: PciDevice): ClaimMatch {
  if (device.vendor === null || device.device === null) {
    throw new HostdevError('HOSTDEV_USAGE', `the vendor and device IDs of ${device.address} could not be read, so the claim cannot name its card`, {
      hint: 'Give the IDs with --match VENDOR:DEVICE (lspci -nn -s ADDRESS prints them).',
      details: { address: device.address },
    });
  }
  return { vendor: device.vendor, device: device.device };
}

function stateOf(claim: Claim, device: Found | null, index: TableIndex): ClaimState {
  if (device === null) return 'absent';
  if (!matchesClaim(claim, device)) return 'mismatch';
  const located = index.find(claim.address);
  if (located?.table === 'active') return 'held';
  return located?.table === 'inactive' && device.driver === located.entry.stubDriver ? 'applied' : 'pending';
}

function errorJson(error: HostdevError): ApplyItem['error'] {
  return { code: error.code, message: error.message, hint: error.hint ?? null };
}
