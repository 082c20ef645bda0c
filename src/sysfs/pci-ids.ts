import { readFileSync } from 'node:fs';

/** Debian's pci.ids (package `pci.ids`). Never taken from `--root`: names describe hardware, not a host. */
export const DEFAULT_PCI_IDS_PATH = '/usr/share/misc/pci.ids';

/** pci.ids location: $HOSTDEV_PCI_IDS, else Debian's. Never under --root. */
export function pciIdsPath(): string {
  return process.env['HOSTDEV_PCI_IDS'] ?? DEFAULT_PCI_IDS_PATH;
}

/** Names for numeric ids; every lookup returns null when the database does not know the id. */
export interface PciNames {
  vendorName(vendor: string): string | null;
  deviceName(vendor: string, device: string): string | null;
  /** The subclass name lspci prints ("Ethernet controller") for a 4-digit class, else the base class name. */
  className(pciClass: string): string | null;
}

interface Block {
  readonly name: string;
  readonly start: number;
  readonly end: number;
}

/**
 * Looks names up lazily in the raw bytes of pci.ids: a host shows a handful of vendors, so
 * finding each one's block on demand beats decoding and parsing 35,000 lines up front (and the
 * bytes are searched as they are: only the stretch after a found line is ever decoded).
 */
export class PciIdsDatabase implements PciNames {
  private readonly vendors = new Map<string, Block | null>();
  private readonly classes = new Map<string, Block | null>();
  private readonly devices = new Map<string, string | null>();
  private readonly nextTopLevel = /\n[^\t#\n]/g;

  constructor(private readonly bytes: Buffer) {}

  vendorName(vendor: string): string | null {
    return this.vendorBlock(vendor)?.name ?? null;
  }

  deviceName(vendor: string, device: string): string | null {
    const key = `${vendor}:${device}`;
    let name = this.devices.get(key);
    if (name === undefined) {
      const block = this.vendorBlock(vendor);
      name = block ? this.child(block, device) : null;
      this.devices.set(key, name);
    }
    return name;
  }

  className(pciClass: string): string | null {
    const base = pciClass.slice(0, 2);
    let block = this.classes.get(base);
    if (block === undefined) {
      block = this.block(`\nC ${base}  `);
      this.classes.set(base, block);
    }
    if (!block) return null;
    return (pciClass.length >= 4 ? this.child(block, pciClass.slice(2, 4)) : null) ?? block.name;
  }

  private vendorBlock(vendor: string): Block | null {
    let block = this.vendors.get(vendor);
    if (block === undefined) {
      block = /^[0-9a-f]{4}$/.test(vendor) ? this.block(`\n${vendor}  `) : null;
      this.vendors.set(vendor, block);
    }
    return block;
  }

  /** Finds a top-level line and the extent of the indented lines under it. */
  private block(marker: string): Block | null {
    const at = this.bytes.indexOf(marker, 0, 'latin1');
    if (at < 0) return null;
    const lineEnd = this.lineEnd(at + 1);
    return { name: this.name(at + marker.length, lineEnd), start: lineEnd, end: this.topLevelFrom(lineEnd) };
  }

  /** The next line that is neither indented nor a comment, decoding growing stretches from `from`. */
  private topLevelFrom(from: number): number {
    const length = this.bytes.length;
    for (let start = from, size = 16_384; start < length; start += size - 1, size *= 4) {
      const text = this.bytes.toString('latin1', start, Math.min(length, start + size));
      this.nextTopLevel.lastIndex = 0;
      const next = this.nextTopLevel.exec(text);
      if (next) return start + next.index;
    }
    return length;
  }

  private child(block: Block, id: string): string | null {
    const marker = `\n\t${id}  `;
    const at = this.bytes.indexOf(marker, block.start, 'latin1');
    if (at < 0 || at >= block.end) return null;
    return this.name(at + marker.length, this.lineEnd(at + 1));
  }

  private name(start: number, end: number): string {
    return this.bytes.toString('utf8', start, end).trim();
  }

  private lineEnd(from: number): number {
    const at = this.bytes.indexOf(0x0a, from);
    return at < 0 ? this.bytes.length : at;
  }
}

/** Loads the database, or returns null when the file is absent or unreadable. */
export function loadPciIds(path: string = DEFAULT_PCI_IDS_PATH): PciIdsDatabase | null {
  try {
    return new PciIdsDatabase(readFileSync(path));
  } catch {
    return null;
  }
}

let system: { readonly path: string; readonly db: PciIdsDatabase | null } | undefined;

/**
 * The database at `path`, read once per process: pci.ids is a static file, so this cache holds
 * no host state (sysfs is always read afresh).
 */
export function cachedPciIds(path: string = DEFAULT_PCI_IDS_PATH): PciIdsDatabase | null {
  if (system?.path !== path) system = { path, db: loadPciIds(path) };
  return system.db;
}
