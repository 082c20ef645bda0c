import { tryParseAddress, type PciAddress } from '../core/address.js';

/**
 * Parses the output of `udevadm monitor --kernel --subsystem-match=pci --property`:
 *
 *   KERNEL[1234.567890] remove   /devices/pci0000:00/0000:00:03.0/0000:03:10.0 (pci)
 *   ACTION=remove
 *   DEVPATH=/devices/pci0000:00/0000:00:03.0/0000:03:10.0
 *   SUBSYSTEM=pci
 *   DRIVER=igbvf
 *   PCI_SLOT_NAME=0000:03:10.0
 *   SEQNUM=4242
 *   (blank line)
 *
 * Incremental: feed chunks as they arrive; complete events come out.
 */
interface UdevEvent {
  readonly action: string;
  readonly devpath: string;
  readonly address: PciAddress | null;
  readonly driver: string | null;
  readonly seqnum: number | null;
}

const HEADER = /^(KERNEL|UDEV)\[[\d.]+\]\s+(\S+)\s+(\S+)\s+\((\S+)\)$/;

function addressOf(properties: ReadonlyMap<string, string>, devpath: string): PciAddress | null {
  const slot = properties.get('PCI_SLOT_NAME');
  if (slot !== undefined) return tryParseAddress(slot);
  return tryParseAddress(devpath.split('/').pop() ?? '');
}

export class UdevMonitorParser {
  private buffer = '';
  private header: { action: string; devpath: string } | null = null;
  private properties = new Map<string, string>();

  feed(chunk: string): UdevEvent[] {
    this.buffer += chunk;
    const events: UdevEvent[] = [];
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trimEnd();
      this.buffer = this.buffer.slice(newline + 1);
      const event = this.line(line);
      if (event !== null) events.push(event);
    }
    return events;
  }

  /** Ends the stream: an event without its closing blank line still counts. */
  end(): UdevEvent[] {
    const events = this.buffer.length > 0 ? this.feed('\n') : [];
    const last = this.flush();
    return last === null ? events : [...events, last];
  }

  private line(line: string): UdevEvent | null {
    const header = HEADER.exec(line);
    if (header) {
      const previous = this.flush();
      this.header = { action: header[2]!, devpath: header[3]! };
      return previous;
    }
    if (line === '') return this.flush();
    const equals = line.indexOf('=');
    if (this.header !== null && equals > 0) this.properties.set(line.slice(0, equals), line.slice(equals + 1));
    return null;
  }

  private flush(): UdevEvent | null {
    const header = this.header;
    const properties = this.properties;
    this.header = null;
    this.properties = new Map();
    if (header === null) return null;
    const seqnum = properties.has('SEQNUM') ? Number(properties.get('SEQNUM')) : null;
    return {
      action: properties.get('ACTION') ?? header.action,
      devpath: properties.get('DEVPATH') ?? header.devpath,
      address: addressOf(properties, properties.get('DEVPATH') ?? header.devpath),
      driver: properties.get('DRIVER') ?? null,
      seqnum: seqnum !== null && Number.isFinite(seqnum) ? seqnum : null,
    };
  }
}
