import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Container Device Interface specs for pool devices: one spec file per pool, of the kind
 * hostdev.io/vfio, one CDI device per function named by its PCI address, whose edits add the VFIO
 * container node and the function's group node. A runtime with CDI (containerd's enable_cdi, CRI-O)
 * injects them when the kubelet passes the names Allocate returned.
 */
export const CDI_KIND = 'hostdev.io/vfio';

export interface CdiDevice {
  readonly id: string;
  readonly iommuGroup: number | null;
}

export function cdiDeviceName(id: string): string {
  return `${CDI_KIND}=${id}`;
}

function deviceNode(vfioDir: string, name: string): { path: string; hostPath: string; permissions: string } {
  return { path: `/dev/vfio/${name}`, hostPath: path.join(vfioDir, name), permissions: 'rw' };
}

/** The spec (CDI 0.5.0: deviceNodes with hostPath) for a pool's devices; `vfioDir` is where the host has them. */
export function cdiSpec(devices: readonly CdiDevice[], vfioDir: string): object {
  return {
    cdiVersion: '0.5.0',
    kind: CDI_KIND,
    devices: devices.map((device) => ({
      name: device.id,
      containerEdits: {
        deviceNodes: [deviceNode(vfioDir, 'vfio'), ...(device.iommuGroup === null ? [] : [deviceNode(vfioDir, String(device.iommuGroup))])],
      },
    })),
  };
}

export function cdiSpecPath(cdiDir: string, poolName: string): string {
  return path.join(cdiDir, `hostdev-${poolName}.json`);
}

/** Writes a spec whole (a runtime reading the directory never sees half of one). */
export async function writeCdiSpec(file: string, spec: object): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.tmp`;
  await writeFile(partial, `${JSON.stringify(spec, null, 2)}\n`, { mode: 0o644 });
  await rename(partial, file);
}

export async function removeCdiSpec(file: string): Promise<void> {
  await rm(file, { force: true });
}
