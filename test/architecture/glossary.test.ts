import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatOwner, makeOwner, ownerCell } from '../../src/core/tables.js';

// docs/glossary.md and the code agree: every name its "in the code" column gives is declared in src/
// (a `Type.field` has that field), and an owner is spelled the one way the glossary says.
const repo = fileURLToPath(new URL('../..', import.meta.url));

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(file);
    return entry.name.endsWith('.ts') ? [file] : [];
  });
}

const code = sources(path.join(repo, 'src')).map((file) => ({ file, text: fs.readFileSync(file, 'utf8') }));

/** The backticked code names of the glossary's "in the code" column: `Name`, `Name.field` or `name(...)`. */
function glossaryNames(): string[] {
  const rows = fs
    .readFileSync(path.join(repo, 'docs/glossary.md'), 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('| **'));
  const names = rows.flatMap((row) => {
    const inCode = row.split('|')[3] ?? '';
    return [...inCode.matchAll(/`([A-Za-z]+(?:\.[A-Za-z]+)?)(?:\([^`]*\))?`/g)].map((match) => match[1]!);
  });
  return [...new Set(names)];
}

function declared(name: string): boolean {
  const declaration = new RegExp(`export (?:declare )?(?:type|interface|class|function|const|async function) ${name}\\b`);
  return code.some(({ text }) => declaration.test(text));
}

function hasField(typeName: string, field: string): boolean {
  return code.some(({ text }) => {
    const start = text.search(new RegExp(`export (?:interface|type|class) ${typeName}\\b`));
    if (start < 0) return false;
    const body = text.slice(start, text.indexOf('\n}', start));
    return new RegExp(`\\b${field}\\??:`).test(body);
  });
}

describe('the glossary and the code', () => {
  const names = glossaryNames();

  it('names a few dozen things in the code', () => {
    expect(names.length).toBeGreaterThan(20);
  });

  it.each(names.filter((name) => !name.includes('.') && /^[A-Z]/.test(name)))('declares the type %s', (name) => {
    expect(declared(name)).toBe(true);
  });

  it.each(names.filter((name) => !name.includes('.') && /^[a-z]/.test(name) && /[A-Z]/.test(name)))(
    'declares %s (a function or a field of a glossary type)',
    (name) => {
      const asField = new RegExp(`readonly ${name}\\??:`);
      expect(declared(name) || code.some(({ text }) => asField.test(text))).toBe(true);
    },
  );

  it.each(names.filter((name) => name.includes('.')))('%s is a field of that type', (name) => {
    const [typeName, field] = name.split('.') as [string, string];
    expect(hasField(typeName, field)).toBe(true);
  });

  it('spells an owner one way: "driver qemu, domain vm1" or "detached, no owner"; columns "qemu/vm1" or "hostdev (detached)"', () => {
    expect(formatOwner(makeOwner('qemu', 'vm1'))).toBe('driver qemu, domain vm1');
    expect(formatOwner(null)).toBe('detached, no owner');
    expect(ownerCell({ table: 'active', owner: makeOwner('xen', 'vm2') })).toBe('xen/vm2');
    expect(ownerCell({ table: 'inactive' })).toBe('hostdev (detached)');
    expect(makeOwner('qemu', 'vm1')).toEqual({ driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' });
    const others = [/no domain \(detached\)/, /detached, no domain/, /detached, inactive/, /'\(detached\)'/, /driver \$\{[^}]+\}, domain \$\{/];
    const offenders = code
      .filter(({ file }) => !file.endsWith(path.join('core', 'tables.ts')))
      .flatMap(({ file, text }) => others.filter((pattern) => pattern.test(text)).map((pattern) => `${path.relative(repo, file)}: ${pattern}`));
    expect(offenders).toEqual([]);
  });
});
