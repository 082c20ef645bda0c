/**
 * Parsers for the text of sysfs PCI attributes. Each returns undefined for content that is not
 * what the kernel writes (the caller turns that into a null and a warning).
 */

const HEX_ID = /^0x([0-9a-fA-F]{1,4})$/;
const HEX_CLASS = /^0x([0-9a-fA-F]{6})$/;
const HEX_BYTE = /^0x([0-9a-fA-F]{1,2})$/;
const DECIMAL = /^-?[0-9]+$/;

/** "0x8086" -> "8086" */
export function parseHexId(text: string): string | undefined {
  const match = HEX_ID.exec(text);
  return match ? match[1]!.toLowerCase().padStart(4, '0') : undefined;
}

/** "0x020000" -> { class: "0200", progIf: "00" } */
export function parseClass(text: string): { class: string; progIf: string } | undefined {
  const match = HEX_CLASS.exec(text);
  if (!match) return undefined;
  const hex = match[1]!.toLowerCase();
  return { class: hex.slice(0, 4), progIf: hex.slice(4, 6) };
}

/** "0x01" -> "01" */
export function parseHexByte(text: string): string | undefined {
  const match = HEX_BYTE.exec(text);
  return match ? match[1]!.toLowerCase().padStart(2, '0') : undefined;
}

export function parseDecimal(text: string): number | undefined {
  return DECIMAL.test(text) ? Number.parseInt(text, 10) : undefined;
}

/** numa_node: -1 means "no node" and becomes null. */
export function parseNumaNode(text: string): number | null | undefined {
  const value = parseDecimal(text);
  return value === undefined ? undefined : value < 0 ? null : value;
}

/** driver_override reads "(null)" when unset. */
export function parseDriverOverride(text: string): string | null {
  const value = text.trim();
  return value === '' || value === '(null)' ? null : value;
}

export function parseResetMethods(text: string): string[] {
  return text.split(/\s+/).filter((word) => word.length > 0);
}

/** The last component of a link target: "../../../bus/pci/drivers/igb" -> "igb". */
export function linkName(target: string): string {
  const trimmed = target.endsWith('/') ? target.slice(0, -1) : target;
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}
