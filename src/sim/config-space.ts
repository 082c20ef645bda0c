/**
 * Binary PCI configuration space for a simulated function, consistent with its sysfs files:
 * IDs, class, revision, header type, a capability list (Power Management, PCI Express with
 * the FLR bit in DevCap) and extended capabilities (ACS, SR-IOV) in the 4 KiB PCIe space.
 */

export type PcieType = 'endpoint' | 'root-port' | 'upstream' | 'downstream' | 'pci-bridge' | 'integrated';

export interface ConfigSpaceInput {
  readonly vendor: number;
  readonly device: number;
  readonly subsystemVendor: number;
  readonly subsystemDevice: number;
  readonly classCode: number; // 24 bits
  readonly revision: number;
  readonly bridge: boolean;
  readonly multifunction: boolean;
  readonly pcie: PcieType | null;
  readonly flr: boolean;
  readonly acs: boolean;
  readonly buses?: { readonly primary: number; readonly secondary: number; readonly subordinate: number };
  /** Device Serial Number, "00-1b-21-ff-ff-8a-3c-12" (most significant byte first), as an extended capability. */
  readonly serialNumber?: string | null;
  /** Whether the function has the VPD capability (its `vpd` file holds the data). */
  readonly vpd?: unknown;
  readonly sriov?: {
    readonly totalVfs: number;
    readonly numVfs: number;
    readonly offset: number;
    readonly stride: number;
    readonly vfDevice: number;
  };
}

const PCI_CAP_ID_PM = 0x01;
const PCI_CAP_ID_EXP = 0x10;
const PCI_CAP_ID_VPD = 0x03;
const VPD_OFFSET = 0x48;
const PCI_EXT_CAP_ID_ACS = 0x0d;
export const PCI_EXT_CAP_ID_DSN = 0x03;
export const PCI_EXT_CAP_ID_SRIOV = 0x10;
export const PCI_EXP_DEVCAP_FLR = 1 << 28;

const PM_OFFSET = 0x40;
const EXP_OFFSET = 0x50;
const EXT_START = 0x100;
const SRIOV_SIZE = 0x40;
/** Offset of NumVFs inside the SR-IOV capability (the kernel updates it on sriov_numvfs writes). */
export const SRIOV_NUMVFS_REG = 0x10;
export const SRIOV_CTRL_REG = 0x08;

const PCIE_TYPE_CODE: Record<PcieType, number> = {
  endpoint: 0x0,
  'root-port': 0x4,
  upstream: 0x5,
  downstream: 0x6,
  'pci-bridge': 0x7,
  integrated: 0x9,
};

export function buildConfigSpace(input: ConfigSpaceInput): Buffer {
  const size = input.pcie === null ? 256 : 4096;
  const b = Buffer.alloc(size);
  b.writeUInt16LE(input.vendor, 0x00);
  b.writeUInt16LE(input.device, 0x02);
  b.writeUInt16LE(0x0406, 0x04); // memory space, bus master, INTx disable
  b.writeUInt16LE(0x0010, 0x06); // status: capabilities list
  b.writeUInt8(input.revision, 0x08);
  b.writeUInt8(input.classCode & 0xff, 0x09);
  b.writeUInt8((input.classCode >> 8) & 0xff, 0x0a);
  b.writeUInt8((input.classCode >> 16) & 0xff, 0x0b);
  b.writeUInt8((input.bridge ? 0x01 : 0x00) | (input.multifunction ? 0x80 : 0), 0x0e);
  if (input.bridge) {
    b.writeUInt8(input.buses?.primary ?? 0, 0x18);
    b.writeUInt8(input.buses?.secondary ?? 0, 0x19);
    b.writeUInt8(input.buses?.subordinate ?? 0, 0x1a);
  } else {
    b.writeUInt16LE(input.subsystemVendor, 0x2c);
    b.writeUInt16LE(input.subsystemDevice, 0x2e);
  }
  b.writeUInt8(PM_OFFSET, 0x34);

  // Power Management capability, PM 1.2, No_Soft_Reset clear.
  const hasVpd = input.vpd !== undefined && input.vpd !== null && input.vpd !== false;
  b.writeUInt8(PCI_CAP_ID_PM, PM_OFFSET);
  b.writeUInt8(hasVpd ? VPD_OFFSET : input.pcie === null ? 0 : EXP_OFFSET, PM_OFFSET + 1);
  b.writeUInt16LE(0x0003, PM_OFFSET + 2);
  // Vital Product Data capability (the kernel makes the `vpd` file only for a function that has it).
  if (hasVpd) {
    b.writeUInt8(PCI_CAP_ID_VPD, VPD_OFFSET);
    b.writeUInt8(input.pcie === null ? 0 : EXP_OFFSET, VPD_OFFSET + 1);
  }
  if (input.pcie === null) return b;

  const type = PCIE_TYPE_CODE[input.pcie];
  const slot = input.pcie === 'root-port' || input.pcie === 'downstream' ? 0x0100 : 0;
  b.writeUInt8(PCI_CAP_ID_EXP, EXP_OFFSET);
  b.writeUInt8(0, EXP_OFFSET + 1);
  b.writeUInt16LE(0x0002 | (type << 4) | slot, EXP_OFFSET + 2);
  const devCap = 0x00008000 /* role-based error reporting */ | (input.flr ? PCI_EXP_DEVCAP_FLR : 0);
  b.writeUInt32LE(devCap >>> 0, EXP_OFFSET + 4);
  b.writeUInt32LE(0x00000000 | (1 << 4) | 0x2 /* x1, 5 GT/s */, EXP_OFFSET + 0x0c);
  b.writeUInt16LE(0x1012, EXP_OFFSET + 0x12); // link status: x1, 5 GT/s, slot clock

  const ext: Array<{ id: number; size: number; fill: (at: number) => void }> = [];
  if (input.acs) {
    ext.push({
      id: PCI_EXT_CAP_ID_ACS,
      size: 8,
      fill: (at) => {
        b.writeUInt16LE(0x001f, at + 4); // SV TB RR CR UF
        b.writeUInt16LE(0x001d, at + 6); // enabled: SV RR CR UF
      },
    });
  }
  const serial = input.serialNumber;
  if (serial !== undefined && serial !== null) {
    ext.push({
      id: PCI_EXT_CAP_ID_DSN,
      size: 12,
      fill: (at) => Buffer.from(serial.split('-').reverse().join(''), 'hex').copy(b, at + 4),
    });
  }
  const sriov = input.sriov;
  if (sriov) {
    ext.push({
      id: PCI_EXT_CAP_ID_SRIOV,
      size: SRIOV_SIZE,
      fill: (at) => {
        b.writeUInt16LE(sriov.numVfs > 0 ? 0x0009 : 0, at + SRIOV_CTRL_REG); // VF Enable | VF MSE
        b.writeUInt16LE(sriov.totalVfs, at + 0x0c); // InitialVFs
        b.writeUInt16LE(sriov.totalVfs, at + 0x0e);
        b.writeUInt16LE(sriov.numVfs, at + SRIOV_NUMVFS_REG);
        b.writeUInt16LE(sriov.offset, at + 0x14);
        b.writeUInt16LE(sriov.stride, at + 0x16);
        b.writeUInt16LE(sriov.vfDevice, at + 0x1a);
        b.writeUInt32LE(0x553, at + 0x1c); // supported page sizes
        b.writeUInt32LE(0x1, at + 0x20);
      },
    });
  }
  let at = EXT_START;
  ext.forEach((cap, i) => {
    const next = i + 1 < ext.length ? at + cap.size : 0;
    b.writeUInt32LE((cap.id | (1 << 16) | (next << 20)) >>> 0, at);
    cap.fill(at);
    at += cap.size;
  });
  return b;
}

/** Finds an extended capability's offset, or null. */
export function findExtCap(config: Buffer, id: number): number | null {
  let at = EXT_START;
  for (let hops = 0; at !== 0 && at + 4 <= config.length && hops < 64; hops++) {
    const header = config.readUInt32LE(at);
    if ((header & 0xffff) === id) return at;
    at = header >>> 20;
  }
  return null;
}
