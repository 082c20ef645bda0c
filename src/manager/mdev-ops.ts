import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { deviceInUse, deviceNotFound, mdevKey } from '../core/device-entry.js';
import { isUuid, type DeviceKey } from '../core/device-key.js';
import { HostdevError } from '../core/errors.js';
import type { MdevDevice, MdevParent, NonPciInventory } from '../core/nonpci-device.js';
import type { Operation } from '../state/store.js';
import {
  definitionsDir,
  dropDefinition,
  isAttributeName,
  readDefinitions,
  saveDefinition,
  type MdevAttribute,
  type MdevDefinition,
  type MdevStart,
} from '../state/mdev-definitions.js';
import { readTimeoutFromEnv } from '../sysfs/bounded-inventory.js';
import { readNonPciInventory } from '../sysfs/nonpci-inventory.js';
import type { SysfsLayout } from '../sysfs/paths.js';
import type { DevicePorts } from './device-ops.js';
import { mdevWriteFailed } from './kernel-errors.js';

/*
 * Mediated devices: create and remove (mdevctl start/stop; libvirt's nodedev-create/destroy), their
 * attributes, and their definitions (mdevctl define/undefine, start at boot). Each `create` and
 * `remove` write is journaled before it is made and cleared by the commit that follows it.
 */

interface SysfsWrite {
  readonly path: string;
  readonly value: string;
}

export interface MdevReport {
  readonly operation: 'mdev-create' | 'mdev-remove';
  readonly dryRun: boolean;
  readonly key: DeviceKey;
  readonly uuid: string;
  readonly parent: string | null;
  readonly type: string | null;
  /** The sysfs write, as `--dry-run` prints it. */
  readonly write: SysfsWrite;
  /** The attribute writes that follow a create, in order (mdevctl's `attrs`); empty for a remove. */
  readonly attributes: readonly SysfsWrite[];
  /** The definition file written (create --persist) or dropped (remove --undefine); else null. */
  readonly definition: string | null;
}

/** What `mdev define` wrote. */
export interface MdevDefineReport {
  readonly operation: 'mdev-define';
  readonly dryRun: boolean;
  readonly key: DeviceKey;
  readonly uuid: string;
  readonly parent: string;
  readonly type: string;
  readonly start: MdevStart;
  readonly attrs: readonly MdevAttribute[];
  readonly definition: string;
}

/** What `mdev start-defined` (or `mdev start UUID`) did with each definition. */
export interface StartDefinedReport {
  readonly dryRun: boolean;
  readonly started: readonly MdevReport[];
  /** Defined and there already. */
  readonly present: readonly DeviceKey[];
  /** Defined with start "manual": left for `mdev start UUID`. */
  readonly manual: readonly DeviceKey[];
  readonly failed: readonly { readonly key: DeviceKey; readonly code: string; readonly message: string }[];
}

export interface MdevMakeRequest {
  readonly parent: string;
  readonly type: string;
  readonly uuid?: string | undefined;
  readonly dryRun: boolean;
  /** Written to the mdev's directory in order once it is made. */
  readonly attrs?: readonly MdevAttribute[] | undefined;
}

export async function mdevInventory(layout: SysfsLayout): Promise<NonPciInventory> {
  return readNonPciInventory(layout, ['mdev'], readTimeoutFromEnv());
}

function parentOf(inventory: NonPciInventory, name: string): MdevParent | undefined {
  return inventory.mdevParents.find((candidate) => candidate.name === name || candidate.key === `pci:${name}`);
}

function parentNotFound(inventory: NonPciInventory, name: string): HostdevError {
  return new HostdevError('HOSTDEV_DEVICE_NOT_FOUND', `${name} is not a mediated device parent on this host`, {
    hint: `\`hostdev mdev list\` lists the parents and their types${inventory.mdevParents.length === 0 ? ' (this host has none: is the parent driver loaded?)' : `: ${inventory.mdevParents.map((p) => p.name).join(', ')}`}.`,
    details: { parent: name },
  });
}

function typeOf(parent: MdevParent, type: string): MdevParent['types'][number] {
  const found = parent.types.find((candidate) => candidate.id === type || candidate.name === type);
  if (found === undefined) {
    throw new HostdevError('HOSTDEV_DEVICE_NOT_FOUND', `mediated device parent ${parent.name} has no type ${type}`, {
      hint: `Its types: ${parent.types.map((t) => t.id).join(', ') || 'none'} (\`hostdev mdev list\`).`,
      details: { parent: parent.name, type },
    });
  }
  return found;
}

function checkedUuid(uuid: string | undefined): string {
  if (uuid !== undefined && !isUuid(uuid)) {
    throw new HostdevError('HOSTDEV_USAGE', `--uuid ${uuid} is not a UUID`, {
      hint: 'Give a UUID as 8-4-4-4-12 hex digits, or leave --uuid out for a random one.',
      details: { uuid },
    });
  }
  return (uuid ?? randomUUID()).toLowerCase();
}

function checkedAttrs(attrs: readonly MdevAttribute[] | undefined): readonly MdevAttribute[] {
  for (const attr of attrs ?? []) {
    if (!isAttributeName(attr.name)) {
      throw new HostdevError('HOSTDEV_USAGE', `${JSON.stringify(attr.name)} is not an mdev attribute name`, {
        hint: "An attribute is a file of the mdev's own directory: give it as NAME=VALUE, NAME without '/' (assign_adapter=0x05, say).",
        details: { attribute: attr.name },
      });
    }
  }
  return attrs ?? [];
}

function attributeWrites(uuid: string, attrs: readonly MdevAttribute[]): SysfsWrite[] {
  return attrs.map((attr) => ({ path: `/sys/bus/mdev/devices/${uuid}/${attr.name}`, value: attr.value }));
}

/**
 * Makes an mdev of TYPE on PARENT: one write of its UUID to the type's `create`, journaled first,
 * then its attributes in order. The kernel's refusals (EINVAL, EEXIST, EUSERS) come back through
 * kernel-errors' one map; an attribute the kernel refuses removes the mdev again (as mdevctl does),
 * so a half-configured mdev is never left for a VM.
 */
export async function createMdev(ports: DevicePorts, request: MdevMakeRequest & { readonly persist?: boolean | undefined; readonly start?: MdevStart | undefined }): Promise<MdevReport> {
  const uuid = checkedUuid(request.uuid);
  const attrs = checkedAttrs(request.attrs);
  const inventory = await mdevInventory(ports.layout);
  const parent = parentOf(inventory, request.parent);
  if (parent === undefined) throw parentNotFound(inventory, request.parent);
  const type = typeOf(parent, request.type);
  const key = mdevKey(uuid);
  const write = { path: `/sys/class/mdev_bus/${parent.name}/mdev_supported_types/${type.id}/create`, value: uuid };
  const definition = request.persist === true ? path.join(definitionsDir(ports.layout.root), `${uuid}.json`) : null;
  const attributes = attributeWrites(uuid, attrs);
  const report: MdevReport = { operation: 'mdev-create', dryRun: request.dryRun, key, uuid, parent: parent.name, type: type.id, write, attributes, definition };
  if (request.dryRun) return report;
  const what = { key, parent: parent.name, type: type.id };
  await journaledWrite(ports, 'mdev-create', key, write, what);
  for (const attribute of attributes) {
    try {
      await ports.kernel.write(attribute.path, attribute.value);
    } catch (error) {
      throw await removedAfter(ports, mdevWriteFailed(error, what), { key, uuid, what });
    }
  }
  if (request.persist === true) await saveDefinition(ports.layout.root, { uuid, parent: parent.name, type: type.id, start: request.start ?? 'auto', attrs });
  return report;
}

/** The refusal of an attribute, once the mdev it was for is removed again (or, if that fails too, saying so). */
async function removedAfter(ports: DevicePorts, refused: HostdevError, mdev: { readonly key: DeviceKey; readonly uuid: string; readonly what: MdevWhat }): Promise<HostdevError> {
  const remove = { path: `/sys/bus/mdev/devices/${mdev.uuid}/remove`, value: '1' };
  let outcome = `${mdev.key} was removed again`;
  let removed = true;
  try {
    await journaledWrite(ports, 'mdev-remove', mdev.key, remove, mdev.what);
  } catch (error) {
    removed = false;
    outcome = `${mdev.key} could not be removed again (${error instanceof Error ? error.message : String(error)}): remove it with \`hostdev mdev remove ${mdev.uuid}\``;
  }
  // The same error (code, hint, details), telling what became of the mdev.
  return HostdevError.fromJSON({
    code: refused.code,
    message: `${refused.message}; ${outcome}`,
    ...(refused.hint === undefined ? {} : { hint: refused.hint }),
    details: { ...refused.details, removed },
  });
}

/**
 * `mdev define`: writes a definition without making the mdev (mdevctl define). The parent need not
 * be there (it may come with a driver loaded later); when it is, its type must be one it offers.
 */
export async function defineMdev(
  ports: DevicePorts,
  request: { readonly parent: string; readonly type: string; readonly uuid?: string | undefined; readonly start: MdevStart; readonly attrs?: readonly MdevAttribute[] | undefined; readonly dryRun: boolean },
): Promise<MdevDefineReport> {
  const uuid = checkedUuid(request.uuid);
  const attrs = checkedAttrs(request.attrs);
  const inventory = await mdevInventory(ports.layout);
  const parent = parentOf(inventory, request.parent);
  const type = parent === undefined ? request.type : typeOf(parent, request.type).id;
  const parentName = parent?.name ?? request.parent;
  const file = path.join(definitionsDir(ports.layout.root), `${uuid}.json`);
  const report: MdevDefineReport = { operation: 'mdev-define', dryRun: request.dryRun, key: mdevKey(uuid), uuid, parent: parentName, type, start: request.start, attrs, definition: file };
  if (!request.dryRun) await saveDefinition(ports.layout.root, { uuid, parent: parentName, type, start: request.start, attrs });
  return report;
}

/** Removes an mdev through its `remove` file; refused while a domain holds it (release it first). */
export async function removeMdev(ports: DevicePorts, request: { readonly uuid: string; readonly dryRun: boolean; readonly undefine?: boolean }): Promise<MdevReport> {
  if (!isUuid(request.uuid)) {
    throw new HostdevError('HOSTDEV_USAGE', `${request.uuid} is not a UUID`, {
      hint: 'Give the mdev by its UUID, as `hostdev mdev list` shows it.',
      details: { uuid: request.uuid },
    });
  }
  const key = mdevKey(request.uuid);
  const uuid = request.uuid.toLowerCase();
  const inventory = await mdevInventory(ports.layout);
  const device: MdevDevice | undefined = inventory.mdev.find((candidate) => candidate.key === key);
  if (device === undefined) throw deviceNotFound(key);
  const write = { path: `/sys/bus/mdev/devices/${uuid}/remove`, value: '1' };
  const definition = request.undefine === true ? path.join(definitionsDir(ports.layout.root), `${uuid}.json`) : null;
  const report: MdevReport = { operation: 'mdev-remove', dryRun: request.dryRun, key, uuid, parent: device.parent, type: device.type, write, attributes: [], definition };
  const held = ports.store.readDevices().find((entry) => entry.key === key);
  if (held !== undefined) throw deviceInUse(held);
  if (request.dryRun) return report;
  await journaledWrite(ports, 'mdev-remove', key, write, { key, parent: device.parent, type: device.type }, (op) => {
    const again = op.devices().find((entry) => entry.key === key);
    if (again !== undefined) throw deviceInUse(again);
  });
  if (request.undefine === true) await dropDefinition(ports.layout.root, uuid);
  return report;
}

/**
 * `mdev start-defined` (boot): makes every defined "auto" mdev that is not there, each on its own;
 * one that fails (its parent is not there yet, no instance left) is reported and the others go on.
 * With `uuid` (`mdev start UUID`): that definition alone, "manual" or not. With `parent` (the udev
 * rule, when a parent registers after boot): the "auto" definitions on that parent.
 */
export async function startDefined(ports: DevicePorts, dryRun: boolean, only: { readonly uuid?: string | undefined; readonly parent?: string | undefined } = {}): Promise<StartDefinedReport> {
  const { uuid, parent } = only;
  const all = await readDefinitions(ports.layout.root);
  const definitions = all.filter(
    (definition) => (uuid === undefined || definition.uuid === uuid.toLowerCase()) && (parent === undefined || definition.parent === parent || `pci:${definition.parent}` === parent),
  );
  if (uuid !== undefined && definitions.length === 0) {
    throw new HostdevError('HOSTDEV_DEVICE_NOT_FOUND', `${mdevKey(uuid)} has no definition`, {
      hint: 'Define it first (`hostdev mdev define PARENT TYPE --uuid UUID`, or `mdev create ... --persist`); `hostdev mdev list` shows the definitions.',
      details: { uuid },
    });
  }
  const there = new Set((await mdevInventory(ports.layout)).mdev.map((device) => device.uuid));
  const started: MdevReport[] = [];
  const present: DeviceKey[] = [];
  const manual: DeviceKey[] = [];
  const failed: { key: DeviceKey; code: string; message: string }[] = [];
  for (const definition of definitions) {
    const key = mdevKey(definition.uuid);
    if (there.has(definition.uuid)) {
      present.push(key);
      continue;
    }
    if (uuid === undefined && definition.start === 'manual') {
      manual.push(key);
      continue;
    }
    try {
      started.push(await createMdev(ports, { ...definition, dryRun }));
    } catch (error) {
      if (!(error instanceof HostdevError)) throw error;
      failed.push({ key, code: error.code, message: error.message });
    }
  }
  return { dryRun, started, present, manual, failed };
}

/** Every definition (for `mdev list`). */
export function mdevDefinitions(ports: DevicePorts): Promise<MdevDefinition[]> {
  return readDefinitions(ports.layout.root);
}

type MdevWhat = { readonly key: string; readonly parent: string | null; readonly type: string | null };

async function journaledWrite(
  ports: DevicePorts,
  action: 'mdev-create' | 'mdev-remove',
  key: DeviceKey,
  write: SysfsWrite,
  what: MdevWhat,
  check: (op: Operation) => void = () => undefined,
): Promise<void> {
  await ports.store.exclusive(action, async (op) => {
    check(op);
    const handle = op.intendDevice({ key, action, hostPath: write.path, value: write.value });
    try {
      await ports.kernel.write(write.path, write.value);
    } catch (error) {
      // Refused: nothing changed on the host, so the intent is cleared at once.
      op.commit([]);
      throw mdevWriteFailed(error, what);
    }
    op.done(handle);
    op.commit([]);
  });
}
