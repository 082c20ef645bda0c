import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PciDevice } from '../../src/core/device.js';
import {
  bestVfioModule,
  modaliasFields,
  modaliasText,
  parseVfioAliases,
  stubDriverOfModule,
  vfioStubFor,
  type ModaliasFields,
} from '../../src/core/vfio-variant.js';

// modules.alias lines as depmod writes them (Linux 6.x: vfio-pci's catch-all, override-only variant
// entries, and ordinary pci: aliases that must be ignored).
const MODULES_ALIAS = `# Aliases extracted from modules themselves.
alias pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_core
alias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_vfio_pci
alias vfio_pci:v000019E5d0000A251sv*sd*bc*sc*i* hisi_acc_vfio_pci
alias vfio_pci:v000019E5d0000A251sv000019E5sd*bc*sc*i* made_up_narrower_vfio_pci
alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci
alias vfio_pci:v00001AF4d00001041sv*sd*bc*sc*i* virtio_vfio_pci
alias vfio_pci:v00001AF4d[0-9]sv*sd*bc*sc*i* not_a_plain_alias
alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci
`;

function device(fields: Partial<PciDevice>): PciDevice {
  return {
    address: '0000:01:00.1',
    vendor: '15b3',
    device: '101e',
    subsystemVendor: '15b3',
    subsystemDevice: '0042',
    class: '0200',
    progIf: '00',
    ...fields,
  } as PciDevice;
}

describe('modules.alias vfio_pci: aliases', () => {
  const aliases = parseVfioAliases(MODULES_ALIAS);

  it('keeps the vfio_pci: lines in file order, and nothing else', () => {
    expect(aliases.map((a) => a.module)).toEqual(['mlx5_vfio_pci', 'hisi_acc_vfio_pci', 'made_up_narrower_vfio_pci', 'vfio_pci', 'virtio_vfio_pci']);
    expect(aliases[0]!.fields).toEqual(['000015B3', '0000101E', '*', '*', '*', '*', '*']);
  });

  it('spells the modalias as the kernel does', () => {
    const fields = modaliasFields(device({ vendor: '8086', device: '10ca', subsystemVendor: '8086', subsystemDevice: 'a03c' }));
    expect(modaliasText(fields!)).toBe('pci:v00008086d000010CAsv00008086sd0000A03Cbc02sc00i00');
    expect(modaliasFields(device({ subsystemVendor: null }))).toBeNull();
  });

  it('picks the alias with the fewest wildcards; vfio-pci when only the catch-all matches', () => {
    expect(vfioStubFor(device({}), aliases)).toBe('mlx5_vfio_pci');
    expect(vfioStubFor(device({ vendor: '19e5', device: 'a251', subsystemVendor: '19e5' }), aliases)).toBe('made_up_narrower_vfio_pci');
    expect(vfioStubFor(device({ vendor: '19e5', device: 'a251', subsystemVendor: '1234' }), aliases)).toBe('hisi_acc_vfio_pci');
    expect(vfioStubFor(device({ vendor: '8086', device: '10ca' }), aliases)).toBe('vfio-pci');
    expect(vfioStubFor(device({}), [])).toBe('vfio-pci');
  });

  it('takes the first of equally specific aliases, and nothing when none matches', () => {
    const tie = parseVfioAliases(
      'alias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* first_vfio_pci\nalias vfio_pci:v000015B3d*sv*sd00000042bc*sc*i* other_vfio_pci\nalias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* second_vfio_pci\n',
    );
    expect(bestVfioModule(modaliasFields(device({}))!, tie)).toBe('first_vfio_pci');
    expect(bestVfioModule(modaliasFields(device({ vendor: '8086' }))!, tie)).toBeNull();
  });

  it('vfio_pci registers the vfio-pci driver; a variant keeps its module name', () => {
    expect(stubDriverOfModule('vfio_pci')).toBe('vfio-pci');
    expect(stubDriverOfModule('mlx5_vfio_pci')).toBe('mlx5_vfio_pci');
  });

  it('an alias that names every field of a device matches it, and one differing field does not', () => {
    const hex = (digits: number) => fc.stringMatching(new RegExp(`^[0-9A-F]{${digits}}$`));
    fc.assert(
      fc.property(
        fc.tuple(hex(8), hex(8), hex(8), hex(8), hex(2), hex(2), hex(2)),
        fc.array(fc.boolean(), { minLength: 7, maxLength: 7 }),
        fc.integer({ min: 0, max: 6 }),
        (fields, wild, changed) => {
          const alias = fields.map((f, k) => (wild[k] ? '*' : f)) as unknown as ModaliasFields;
          const line = (f: readonly string[]) => `alias vfio_pci:v${f[0]}d${f[1]}sv${f[2]}sd${f[3]}bc${f[4]}sc${f[5]}i${f[6]} test_vfio_pci`;
          expect(bestVfioModule(fields, parseVfioAliases(line(alias)))).toBe('test_vfio_pci');
          if (wild[changed]) return;
          const other = [...fields] as string[];
          other[changed] = other[changed]!.replace(/^./, (c) => (c === '0' ? '1' : '0'));
          expect(bestVfioModule(other as unknown as ModaliasFields, parseVfioAliases(line(alias)))).toBeNull();
        },
      ),
    );
  });
});
