import fs from 'node:fs/promises';
import path from 'node:path';
import { isUuid } from '../core/device-key.js';
import { HostdevError } from '../core/errors.js';

/**
 * Persistent mdev definitions (mdevctl's role): one JSON file per mdev, named by its UUID, in
 * ROOT/etc/hostdev/mdev.d, saying which parent and type make it. `hostdev mdev start-defined`
 * (run at boot by systemd/hostdev-mdev.service) makes every defined mdev that is not there.
 */
export const MDEV_DEFINITIONS_DIR = 'etc/hostdev/mdev.d';

export interface MdevDefinition {
  readonly uuid: string;
  readonly parent: string;
  readonly type: string;
}

export function definitionsDir(root: string): string {
  return path.join(root, MDEV_DEFINITIONS_DIR);
}

function isDefinition(value: unknown): value is MdevDefinition {
  const v = value as Partial<MdevDefinition> | null;
  return v !== null && typeof v === 'object' && typeof v.uuid === 'string' && isUuid(v.uuid) && v.uuid === v.uuid.toLowerCase() && typeof v.parent === 'string' && typeof v.type === 'string';
}

/** Writes (or replaces) a definition: a temporary file renamed into place, so a reader never sees half of one. */
export async function saveDefinition(root: string, definition: MdevDefinition): Promise<string> {
  const dir = definitionsDir(root);
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  const file = path.join(dir, `${definition.uuid}.json`);
  await fs.writeFile(`${file}.tmp`, `${JSON.stringify(definition, null, 2)}\n`, { mode: 0o644 });
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
    if (!isDefinition(parsed) || `${parsed.uuid}.json` !== name) {
      throw new HostdevError('HOSTDEV_USAGE', `${file} is not an mdev definition`, {
        hint: 'A definition is {"uuid", "parent", "type"} in a file named UUID.json; fix or remove the file (`hostdev mdev create --persist` writes them).',
        details: { path: file },
      });
    }
    definitions.push(parsed);
  }
  return definitions;
}
