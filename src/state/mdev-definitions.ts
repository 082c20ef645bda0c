import fs from 'node:fs/promises';
import path from 'node:path';
import { isUuid } from '../core/device-key.js';
import { HostdevError } from '../core/errors.js';

/**
 * Persistent mdev definitions (mdevctl's role): one JSON file per mdev, named by its UUID, in
 * ROOT/etc/hostdev/mdev.d, saying which parent and type make it, whether boot makes it (`start`, as
 * mdevctl spells it: "auto", the default, or "manual") and the attributes written after it is made
 * (`attrs`, mdevctl's list of one-key objects, in order). `hostdev mdev start-defined` (run at boot
 * by systemd/hostdev-mdev.service) makes every defined "auto" mdev that is not there.
 */
export const MDEV_DEFINITIONS_DIR = 'etc/hostdev/mdev.d';

export type MdevStart = 'auto' | 'manual';

/** One attribute of an mdev, written to /sys/bus/mdev/devices/UUID/NAME after the mdev is made. */
export interface MdevAttribute {
  readonly name: string;
  readonly value: string;
}

export interface MdevDefinition {
  readonly uuid: string;
  readonly parent: string;
  readonly type: string;
  readonly start: MdevStart;
  readonly attrs: readonly MdevAttribute[];
}

/** The file's shape: mdevctl's spelling of `start` and `attrs`; both may be missing (older files: auto, none). */
interface DefinitionFile {
  readonly uuid: string;
  readonly parent: string;
  readonly type: string;
  readonly start?: MdevStart;
  readonly attrs?: readonly Readonly<Record<string, string>>[];
}

/** A name the mdev's directory can hold as a file of its own: no path, no dot-only name. */
export function isAttributeName(name: string): boolean {
  return /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(name) && name.length <= 255;
}

export function definitionsDir(root: string): string {
  return path.join(root, MDEV_DEFINITIONS_DIR);
}

function isAttrs(value: unknown): value is DefinitionFile['attrs'] {
  return (
    value === undefined ||
    (Array.isArray(value) &&
      value.every((item: unknown) => {
        if (item === null || typeof item !== 'object' || Array.isArray(item)) return false;
        const entries = Object.entries(item);
        return entries.length === 1 && isAttributeName(entries[0]![0]) && typeof entries[0]![1] === 'string';
      }))
  );
}

function isDefinitionFile(value: unknown): value is DefinitionFile {
  const v = value as Partial<DefinitionFile> | null;
  return (
    v !== null &&
    typeof v === 'object' &&
    typeof v.uuid === 'string' &&
    isUuid(v.uuid) &&
    v.uuid === v.uuid.toLowerCase() &&
    typeof v.parent === 'string' &&
    typeof v.type === 'string' &&
    (v.start === undefined || v.start === 'auto' || v.start === 'manual') &&
    isAttrs(v.attrs)
  );
}

function fromFile(file: DefinitionFile): MdevDefinition {
  const attrs = (file.attrs ?? []).map((item) => {
    const [name, value] = Object.entries(item)[0]!;
    return { name, value };
  });
  return { uuid: file.uuid, parent: file.parent, type: file.type, start: file.start ?? 'auto', attrs };
}

function toFile(definition: MdevDefinition): DefinitionFile {
  return {
    uuid: definition.uuid,
    parent: definition.parent,
    type: definition.type,
    start: definition.start,
    attrs: definition.attrs.map((attr) => ({ [attr.name]: attr.value })),
  };
}

/** Writes (or replaces) a definition: a temporary file renamed into place, so a reader never sees half of one. */
export async function saveDefinition(root: string, definition: MdevDefinition): Promise<string> {
  const dir = definitionsDir(root);
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  const file = path.join(dir, `${definition.uuid}.json`);
  await fs.writeFile(`${file}.tmp`, `${JSON.stringify(toFile(definition), null, 2)}\n`, { mode: 0o644 });
  await fs.rename(`${file}.tmp`, file);
  return file;
}

/** Drops a definition; false when there was none. */
export async function dropDefinition(root: string, uuid: string): Promise<boolean> {
  try {
    await fs.unlink(path.join(definitionsDir(root), `${uuid}.json`));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Every definition, in UUID order; a file that is not one is refused by name (HOSTDEV_USAGE). */
export async function readDefinitions(root: string): Promise<MdevDefinition[]> {
  const dir = definitionsDir(root);
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter((name) => name.endsWith('.json')).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const definitions: MdevDefinition[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    let parsed: unknown;
    try {
      parsed = JSON.parse(await fs.readFile(file, 'utf8'));
    } catch {
      parsed = null;
    }
    if (!isDefinitionFile(parsed) || `${parsed.uuid}.json` !== name) {
      throw new HostdevError('HOSTDEV_USAGE', `${file} is not an mdev definition`, {
        hint: 'A definition is {"uuid", "parent", "type", "start": "auto"|"manual", "attrs": [{"NAME": "VALUE"}]} in a file named UUID.json; fix or remove the file (`hostdev mdev create --persist` and `hostdev mdev define` write them).',
        details: { path: file },
      });
    }
    definitions.push(fromFile(parsed));
  }
  return definitions;
}
