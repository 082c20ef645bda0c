import path from 'node:path';
import { hex, type SimFunction } from './tree-writer.js';

/** The PF fields a VF inherits (read from the spec by the builder, from the tree by the kernel). */
interface PfView {
  readonly address: string;
  readonly devPath: string;
  readonly vendor: number;
  readonly subsystemVendor: number;
  readonly subsystemDevice: number;
  readonly classCode: number;
  readonly revision: number;
  readonly offset: number;
  readonly stride: number;
  readonly vfDevice: number;
}

/**
 * VF n's routing ID is the PF's plus First VF Offset plus n × VF Stride (PCIe SR-IOV 3.3.9/10),
 * so igb's offset 128 stride 2 puts PF 01:00.0's VFs at 01:10.0, 01:10.2, ...
 */
export function vfAddress(pfAddress: string, offset: number, stride: number, index: number): string {
  const match = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(pfAddress);
  if (!match) throw new Error(`not a PCI address: ${pfAddress}`);
  const pfRid = (Number.parseInt(match[2]!, 16) << 8) | (Number.parseInt(match[3]!, 16) << 3) | Number(match[4]);
  const rid = pfRid + offset + stride * index;
  if (rid > 0xffff) throw new Error(`VF ${index} of ${pfAddress} would be beyond bus ff`);
  return `${match[1]}:${hex(rid >> 8, 2)}:${hex((rid >> 3) & 0x1f, 2)}.${rid & 7}`;
}

/** What the PF does not decide about its VF. */
type VfExtras = Pick<SimFunction, 'numaNode' | 'flr' | 'resetMethods' | 'driver' | 'iommuGroup' | 'netdevs'>;

export function vfFunction(pf: PfView, index: number, extras: VfExtras): SimFunction {
  const address = vfAddress(pf.address, pf.offset, pf.stride, index);
  return {
    address,
    devPath: path.posix.join(path.posix.dirname(pf.devPath), address),
    vendor: pf.vendor,
    device: pf.vfDevice,
    subsystemVendor: pf.subsystemVendor,
    subsystemDevice: pf.subsystemDevice,
    classCode: pf.classCode,
    revision: pf.revision,
    bridge: false,
    multifunction: false,
    pcie: 'endpoint',
    flr: extras.flr,
    acs: false,
    numaNode: extras.numaNode,
    resetMethods: extras.resetMethods,
    driver: extras.driver,
    iommuGroup: extras.iommuGroup,
    netdevs: extras.netdevs,
  };
}

export function vfNetdevName(template: string | null, pfNetdev: string | null, index: number): string[] {
  if (template === null) return [];
  return [template.replaceAll('{pf}', pfNetdev ?? 'eth').replaceAll('{n}', String(index))];
}
