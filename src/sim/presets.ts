import type { BridgeSpec, DriverSpec, EndpointSpec, HostSpec, NodeSpec } from './spec.js';

/**
 * Preset hosts. IDs are real ones (pci.ids knows them) so names, drivers and quirks look like
 * the hardware they stand for: Intel 82576 (igb, VFs 8086:10ca on igbvf, offset 128 stride 2),
 * an NVIDIA GP107 with its HDA function, a Samsung NVMe SSD, a PLX switch without ACS.
 */

const hostBridge: EndpointSpec = { at: '00.0', vendor: '8086', device: '29c0', class: '060000', subsystemVendor: '1af4', subsystemDevice: '1100', resetMethods: [] };

/** Skylake-era ports: 00:01.0 is the CPU's x16 port (8086:1901), 00:1c.N root port #N+1 (8086:a110+N). */
function rootPortDevice(at: string): string {
  if (at === '01.0') return '1901';
  const m = /^1c\.([0-7])$/.exec(at);
  return m ? (0xa110 + Number(m[1])).toString(16) : 'a110';
}

function rootPort(at: string, secondaryBus: number, children: NodeSpec[], extra: Partial<BridgeSpec> = {}): BridgeSpec {
  return { kind: 'bridge', at, vendor: '8086', device: rootPortDevice(at), revision: 'f1', port: 'root-port', secondaryBus, children, ...extra };
}

const VFIO_LOADED: Record<string, DriverSpec> = { 'vfio-pci': { loaded: true } };
const VFIO_UNLOADED: Record<string, DriverSpec> = { 'vfio-pci': { loaded: false } };

function igbPort(fn: number, bus: number, numVfs: number): EndpointSpec {
  return {
    at: `00.${fn}`,
    vendor: '8086',
    device: '10c9',
    subsystemVendor: '8086',
    subsystemDevice: 'a03c',
    class: '020000',
    revision: '01',
    driver: 'igb',
    flr: true,
    acs: true,
    netdevs: [`enp${bus}s0f${fn}`],
    // Intel's DSN is the port's MAC with ff-ff in the middle; the card's VPD names the adapter.
    serialNumber: `00-1b-21-ff-ff-8a-3c-${(0x12 + fn + bus * 2).toString(16).padStart(2, '0')}`,
    vpd: { productName: 'Intel(R) Gigabit ET Dual Port Server Adapter', partNumber: 'E66393-003', engineeringChange: 'E65439-004', serialNumber: `001B218A3C${(0x12 + bus * 2).toString(16).toUpperCase().padStart(2, '0')}`, manufacturer: '8086' },
    sriov: { totalVfs: 7, offset: 128, stride: 2, vfDevice: '10ca', vfDriver: 'igbvf', numVfs, autoprobe: true, vfNetdev: '{pf}v{n}' },
  };
}

function gpuPair(): EndpointSpec[] {
  return [
    { at: '00.0', vendor: '10de', device: '1c82', subsystemVendor: '1458', subsystemDevice: '3765', class: '030000', revision: 'a1', driver: 'nouveau', resetMethods: ['bus'] },
    { at: '00.1', vendor: '10de', device: '0fb9', subsystemVendor: '1458', subsystemDevice: '3765', class: '040300', revision: 'a1', driver: 'snd_hda_intel', resetMethods: ['bus'] },
  ];
}

const nvmeDisk: EndpointSpec = {
  at: '00.0',
  vendor: '144d',
  device: 'a808',
  subsystemVendor: '144d',
  subsystemDevice: 'a801',
  class: '010802',
  driver: 'nvme',
  flr: true,
  resetMethods: ['flr', 'bus'],
};

/** PLX PEX 8747 without ACS: upstream port, two downstream ports, an I210 NIC behind each. */
function plxSwitch(upstreamBus: number, nicNames: [string, string]): BridgeSpec {
  const plx = { vendor: '10b5', device: '8747', revision: 'ca' };
  const i210 = (name: string): EndpointSpec => ({
    at: '00.0',
    vendor: '8086',
    device: '1533',
    subsystemVendor: '8086',
    subsystemDevice: '0001',
    class: '020000',
    revision: '03',
    driver: 'igb',
    flr: true,
    netdevs: [name],
    serialNumber: `00-1b-21-ff-ff-9b-00-${([...name].reduce((sum, c) => sum + c.charCodeAt(0), 0) & 0xff).toString(16).padStart(2, '0')}`,
  });
  return {
    kind: 'bridge',
    at: '00.0',
    ...plx,
    port: 'upstream',
    acs: false,
    secondaryBus: upstreamBus + 1,
    children: [
      { kind: 'bridge', at: '08.0', ...plx, port: 'downstream', acs: false, secondaryBus: upstreamBus + 2, children: [i210(nicNames[0])] },
      { kind: 'bridge', at: '10.0', ...plx, port: 'downstream', acs: false, secondaryBus: upstreamBus + 3, children: [i210(nicNames[1])] },
    ],
  };
}

/** ICH9-style multifunction device without ACS: its functions share one group, as under QEMU q35. */
const ich9: EndpointSpec[] = [
  { at: '1f.0', vendor: '8086', device: '2918', subsystemVendor: '1af4', subsystemDevice: '1100', class: '060100', revision: '02', driver: 'lpc_ich', resetMethods: [] },
  { at: '1f.2', vendor: '8086', device: '2922', subsystemVendor: '1af4', subsystemDevice: '1100', class: '010601', revision: '02', driver: 'ahci', resetMethods: [] },
  { at: '1f.3', vendor: '8086', device: '2930', subsystemVendor: '1af4', subsystemDevice: '1100', class: '0c0500', revision: '02', driver: 'i801_smbus', resetMethods: [] },
];

const onboardNic: EndpointSpec = {
  at: '19.0',
  vendor: '8086',
  device: '15b8',
  subsystemVendor: '1028',
  subsystemDevice: '07a5',
  class: '020000',
  driver: 'e1000e',
  netdevs: ['eno1'],
  resetMethods: ['flr', 'pm'],
  flr: true,
};

const sriovNic: HostSpec = {
  description: 'Intel 82576 2-port NIC (igb), 2 of 7 VFs per port on igbvf; VFs at offset 128 stride 2',
  drivers: VFIO_LOADED,
  roots: [{ numaNode: 0, devices: [hostBridge, rootPort('01.0', 1, [igbPort(0, 1, 2), igbPort(1, 1, 2)])] }],
};

const gpu: HostSpec = {
  description: 'NVIDIA GP107 on nouveau with its HDA audio function on snd_hda_intel, one IOMMU group',
  drivers: VFIO_LOADED,
  roots: [{ devices: [hostBridge, rootPort('01.0', 1, gpuPair())] }],
};

const nvme: HostSpec = {
  description: 'Samsung NVMe SSD on nvme, FLR capable',
  drivers: VFIO_LOADED,
  roots: [{ devices: [hostBridge, rootPort('01.0', 1, [nvmeDisk])] }],
};

const nonAcsSwitch: HostSpec = {
  description: 'PLX switch without ACS: two I210 NICs behind it share one IOMMU group',
  drivers: VFIO_LOADED,
  roots: [{ devices: [hostBridge, rootPort('01.0', 1, [plxSwitch(1, ['enp3s0', 'enp4s0'])])] }],
};

/** Shaped like libvirt's tests/virpcimock.c host (IDs, addresses and groups), with real sysfs links. */
const libvirtTest: HostSpec = {
  description: "libvirt's virpcimock host: functions on one bus, shared groups, several PCI domains",
  drivers: {
    iwlwifi: { ids: [{ vendor: '8086', device: '0044' }] },
    i915: { ids: [{ vendor: '8086', device: '0046' }, { vendor: '8086', device: '0047' }] },
    'vfio-pci': { loaded: true },
    nvme: { ids: [{ vendor: '1cc1', device: '8201' }] },
  },
  roots: [
    {
      devices: [
        { at: '00.0', vendor: '8086', device: '0044', class: '028000', iommuGroup: 0, flr: true },
        { at: '01.0', vendor: '8086', device: '0044', class: '028000', iommuGroup: 1, flr: true },
        { at: '02.0', vendor: '8086', device: '0046', class: '030000', iommuGroup: 2, flr: true },
        { at: '03.0', vendor: '8086', device: '0048', class: '030000', iommuGroup: 3, flr: true },
      ],
    },
    {
      domain: 1,
      devices: [
        {
          kind: 'bridge',
          at: '00.0',
          vendor: '1014',
          device: '03b9',
          port: 'root-port',
          iommuGroup: 4,
          secondaryBus: 1,
          children: [
            { at: '00.0', vendor: '8086', device: '105e', class: '020000', iommuGroup: 5, driver: null, resetMethods: ['bus'] },
            { at: '00.1', vendor: '8086', device: '105e', class: '020000', iommuGroup: 5, driver: null, resetMethods: ['bus'] },
          ],
        },
      ],
    },
    {
      domain: 5,
      bus: 0x80,
      devices: [
        {
          kind: 'bridge',
          at: '00.0',
          vendor: '10b5',
          device: '8112',
          port: 'pci-bridge',
          iommuGroup: 6,
          secondaryBus: 0x90,
          children: [
            { at: '01.0', vendor: '1033', device: '0035', class: '0c0310', iommuGroup: 7, driver: null, pcie: false, resetMethods: ['bus'] },
            { at: '01.1', vendor: '1033', device: '0035', class: '0c0310', iommuGroup: 7, driver: null, pcie: false, resetMethods: ['bus'] },
            { at: '01.2', vendor: '1033', device: '00e0', class: '0c0320', iommuGroup: 7, driver: null, pcie: false, resetMethods: ['bus'] },
            { at: '01.3', vendor: '1033', device: '00e0', class: '0c0320', iommuGroup: 7, driver: null, pcie: false, resetMethods: ['bus'] },
          ],
        },
      ],
    },
    {
      bus: 0x0a,
      devices: [
        { at: '01.0', vendor: '8086', device: '0047', class: '030000', iommuGroup: 8, flr: true },
        { at: '02.0', vendor: '8286', device: '0048', class: '030000', iommuGroup: 8, flr: true },
        { at: '03.0', vendor: '8386', device: '0048', class: '030000', iommuGroup: 8, flr: true },
      ],
    },
  ],
};

const noIommu: HostSpec = {
  description: 'A host booted without an IOMMU: no groups, vfio-pci cannot bind (no no-IOMMU mode)',
  iommu: false,
  drivers: VFIO_UNLOADED,
  roots: [{ devices: [hostBridge, { ...onboardNic, at: '02.0' }, rootPort('01.0', 1, [nvmeDisk]), ...ich9] }],
};

const workstation: HostSpec = {
  description: 'A workstation: GPU+audio, 82576 SR-IOV NIC, NVMe, a switch without ACS, onboard NIC, ICH9 functions',
  drivers: VFIO_UNLOADED,
  roots: [
    {
      numaNode: 0,
      devices: [
        hostBridge,
        rootPort('01.0', 1, gpuPair()),
        rootPort('1c.0', 2, [igbPort(0, 2, 2), igbPort(1, 2, 0)]),
        rootPort('1c.1', 3, [nvmeDisk]),
        rootPort('1c.2', 4, [plxSwitch(4, ['enp6s0', 'enp7s0'])]),
        onboardNic,
        ...ich9,
      ],
    },
  ],
};

/**
 * A NVIDIA ConnectX-6 Dx port (mlx5_core) whose VFs have a vfio-pci variant driver, mlx5_vfio_pci
 * (live migration), known to modules.alias and not loaded; beside it an igb port, whose VFs have none.
 */
const mlx5Vfio: HostSpec = {
  description: 'ConnectX-6 Dx (mlx5_core, 2 of 8 VFs; mlx5_vfio_pci in modules.alias, not loaded) and an igb port (2 VFs)',
  kernelRelease: '6.1.0-hostdev-sim',
  drivers: {
    ...VFIO_LOADED,
    mlx5_vfio_pci: { loaded: false, vfioAliases: [{ vendor: '15b3', device: '101e' }] },
  },
  roots: [
    {
      numaNode: 0,
      devices: [
        hostBridge,
        rootPort('01.0', 1, [
          {
            at: '00.0',
            vendor: '15b3',
            device: '101d',
            subsystemVendor: '15b3',
            subsystemDevice: '0042',
            class: '020000',
            driver: 'mlx5_core',
            flr: true,
            acs: true,
            netdevs: ['enp1s0f0np0'],
            sriov: { totalVfs: 8, offset: 1, stride: 1, vfDevice: '101e', vfDriver: 'mlx5_core', numVfs: 2, autoprobe: true, vfNetdev: '{pf}v{n}' },
          },
        ]),
        rootPort('1c.0', 2, [igbPort(0, 2, 2)]),
      ],
    },
  ],
};

/**
 * A virtualization host with more than PCI functions to give: an Intel UHD 630 iGPU that makes
 * GVT-g vGPUs (mediated devices, one made already), an xHCI controller with a hub, a YubiKey, a
 * keyboard and two identical USB sticks (the same vendor:product on two ports), an NVMe SSD with two
 * namespaces, and a SAS HBA with a disk and an LTO tape drive.
 */
const virtHost: HostSpec = {
  description: 'GVT-g iGPU (mdev types, one vGPU made), xHCI with hub, YubiKey, keyboard and two like USB sticks, NVMe with 2 namespaces, SAS HBA with disk and tape',
  drivers: VFIO_LOADED,
  roots: [
    {
      numaNode: 0,
      devices: [
        hostBridge,
        {
          at: '02.0',
          vendor: '8086',
          device: '3e92',
          subsystemVendor: '1028',
          subsystemDevice: '0869',
          class: '030000',
          driver: 'i915',
          resetMethods: ['flr'],
          flr: true,
          mdev: {
            driver: 'intel_vgpu_mdev',
            types: [
              {
                id: 'i915-GVTg_V5_4',
                name: 'GVTg_V5_4',
                description: 'low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4',
                availableInstances: 2,
              },
              {
                id: 'i915-GVTg_V5_8',
                name: 'GVTg_V5_8',
                description: 'low_gm_size: 64MB\nhigh_gm_size: 384MB\nfence: 4\nresolution: 1024x768\nweight: 2',
                availableInstances: 4,
              },
            ],
            devices: [{ uuid: '4b20d080-1b54-4048-85b3-a6a62d165c01', type: 'i915-GVTg_V5_8' }],
          },
        },
        {
          at: '14.0',
          vendor: '8086',
          device: 'a36d',
          subsystemVendor: '1028',
          subsystemDevice: '0869',
          class: '0c0330',
          revision: '10',
          driver: 'xhci_hcd',
          resetMethods: ['pm'],
          usbBuses: [
            {
              bus: 1,
              devices: [
                { port: '1', vendor: '05e3', product: '0610', manufacturer: 'GenesysLogic', productName: 'USB2.1 Hub', deviceClass: '09', interfaces: [{ class: '09', driver: 'hub' }] },
                { port: '1.2', vendor: '1050', product: '0407', manufacturer: 'Yubico', productName: 'YubiKey OTP+FIDO+CCID', interfaces: [{ class: '03', driver: 'usbhid' }, { class: '03', driver: 'usbhid' }, { class: '0b', driver: null }] },
                { port: '1.3', vendor: '0781', product: '5581', manufacturer: 'SanDisk', productName: 'Ultra', serial: '4C530001230915109491', interfaces: [{ class: '08', driver: 'usb-storage' }] },
                { port: '2', vendor: '0781', product: '5581', manufacturer: 'SanDisk', productName: 'Ultra', serial: '4C530001100210116282', interfaces: [{ class: '08', driver: 'usb-storage' }] },
                { port: '4', vendor: '046d', product: 'c31c', manufacturer: 'Logitech', productName: 'USB Keyboard', interfaces: [{ class: '03', driver: 'usbhid' }, { class: '03', driver: 'usbhid' }] },
              ],
            },
            { bus: 2, speed: 5000, devices: [] },
          ],
        },
        rootPort('1c.0', 1, [{ ...nvmeDisk, nvme: { instance: 0, model: 'Samsung SSD 970 EVO Plus 1TB', serial: 'S4EWNX0R123456A', namespaces: [{ nsid: 1, sectors: 1_000_000_000 }, { nsid: 2, sectors: 953_525_168 }] } }]),
        rootPort('1c.4', 2, [
          {
            at: '00.0',
            vendor: '1000',
            device: '0097',
            subsystemVendor: '1000',
            subsystemDevice: '30e0',
            class: '010700',
            revision: '02',
            driver: 'mpt3sas',
            flr: true,
            scsi: {
              host: 2,
              devices: [
                { channel: 0, target: 0, lun: 0, type: 0, vendor: 'ATA', model: 'ST4000NM0035-1V4', rev: 'TN05', sg: 0, block: 'sda' },
                { channel: 0, target: 1, lun: 0, type: 1, vendor: 'HP', model: 'Ultrium 6-SCSI', rev: '35GD', sg: 1 },
              ],
            },
          },
        ]),
        onboardNic,
      ],
    },
  ],
};

export const presets: Record<string, HostSpec> = {
  'sriov-nic': sriovNic,
  gpu,
  nvme,
  'non-acs-switch': nonAcsSwitch,
  'libvirt-test': libvirtTest,
  'no-iommu': noIommu,
  workstation,
  'mlx5-vfio': mlx5Vfio,
  'virt-host': virtHost,
};

export const DEFAULT_PRESET = 'workstation';

/**
 * A host with exactly `functions` PCI functions, for benchmarks: root ports (one per 64
 * functions) each with a bus of 8-function devices (NICs, NVMe, USB, audio), alternating NUMA
 * nodes, mixed ACS so groups vary in size.
 */
export function generateSpec(functions: number): HostSpec {
  if (!Number.isInteger(functions) || functions < 1) throw new Error('functions must be a positive integer');
  const kinds = [
    { vendor: '8086', device: '1533', class: '020000', driver: 'igb' },
    { vendor: '144d', device: 'a808', class: '010802', driver: 'nvme' },
    { vendor: '1033', device: '0194', class: '0c0330', driver: 'xhci_hcd' },
    { vendor: '8086', device: '2668', class: '040300', driver: 'snd_hda_intel' },
  ];
  const domains: Array<{ domain: number; numaNode: number; devices: NodeSpec[] }> = [];
  let left = functions;
  let port = 0;
  while (left > 0) {
    const domain = Math.floor(port / 240);
    const slotInDomain = port % 240;
    if (slotInDomain === 0) domains.push({ domain, numaNode: domain % 2, devices: [] });
    left--; // the root port itself
    const children: EndpointSpec[] = [];
    for (let i = 0; i < 63 && left > 0; i++, left--) {
      const kind = kinds[(port + Math.floor(i / 8)) % kinds.length]!;
      children.push({
        at: `${(i >> 3).toString(16)}.${i & 7}`,
        vendor: kind.vendor,
        device: kind.device,
        subsystemVendor: kind.vendor,
        subsystemDevice: '0001',
        class: kind.class,
        driver: kind.driver,
        flr: i % 2 === 0,
        acs: port % 3 === 0,
      });
    }
    const secondaryBus = slotInDomain + 1;
    domains[domains.length - 1]!.devices.push(
      rootPort(`${(slotInDomain >> 3).toString(16)}.${slotInDomain & 7}`, secondaryBus, children),
    );
    port++;
  }
  return { description: `generated host with ${functions} functions`, drivers: VFIO_LOADED, roots: domains };
}
