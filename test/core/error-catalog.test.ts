import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOG, ExitCode, HostdevError, type ErrorCode } from '../../src/core/errors.js';

/**
 * The error catalog, README's two tables and the constructions in src/ are kept in step here:
 * a code users can see is documented with its exit code, and every error says what to do next.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const README = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
const CODES = Object.keys(ERROR_CATALOG) as ErrorCode[];

/** Catalog codes that no code in src/ raises, and why they stay. */
const RESERVED: Partial<Record<ErrorCode, string>> = {
  HOSTDEV_PARTIAL: 'a partial outcome is a report whose command exits with ExitCode.partial (8), not a thrown error',
};

/** The lines of the first table in README's `## heading` section, header and rule included. */
function tableLines(heading: string): string[] {
  const lines = README.split('\n');
  const start = lines.indexOf(`## ${heading}`);
  if (start < 0) throw new Error(`README.md has no "## ${heading}" section`);
  const first = lines.findIndex((line, index) => index > start && (line.startsWith('|') || line.startsWith('## ')));
  if (first < 0 || !lines[first]!.startsWith('|')) throw new Error(`README.md's "## ${heading}" section has no table`);
  const after = lines.findIndex((line, index) => index > first && !line.startsWith('|'));
  return lines.slice(first, after < 0 ? undefined : after);
}

/** The cells of each row of that table (header and rule left out). */
function tableRows(heading: string): string[][] {
  return tableLines(heading)
    .slice(2)
    .map((line) => line.replace(/^\||\|$/g, '').split('|').map((cell) => cell.trim()));
}

/** README's "Error codes" table as the catalog spells it: the text to paste when they differ. */
function catalogTable(): string {
  const rows = CODES.map((code) => {
    const entry = ERROR_CATALOG[code];
    return `| \`${code}\` | ${ExitCode[entry.exit]} | ${entry.summary} |`;
  });
  return ['| code | exit code | meaning |', '|---|---|---|', ...rows].join('\n');
}

interface Construction {
  readonly where: string;
  /** The catalog codes its first argument can take (string literals in it). */
  readonly codes: readonly string[];
  readonly hasHint: boolean;
}

/** Subclasses of HostdevError whose code is fixed, and that code. */
const SUBCLASS_CODES: Readonly<Record<string, string>> = { InUseError: 'HOSTDEV_IN_USE' };

/** Every `new HostdevError(...)` (and `new InUseError(...)`) in a source text, found by the TypeScript parser. */
function constructions(fileName: string, text: string): Construction[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: Construction[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'HostdevError') {
      const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      const [code, , options] = node.arguments ?? [];
      found.push({ where: `${fileName}:${line}`, codes: code === undefined ? [] : stringLiterals(code), hasHint: passesHint(options) });
    }
    // A subclass with its code fixed (core/in-use.ts): (message, options).
    const fixed = ts.isNewExpression(node) && ts.isIdentifier(node.expression) ? SUBCLASS_CODES[node.expression.text] : undefined;
    if (fixed !== undefined && ts.isNewExpression(node)) {
      const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      const [, options] = node.arguments ?? [];
      found.push({ where: `${fileName}:${line}`, codes: [fixed], hasHint: passesHint(options) });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function stringLiterals(node: ts.Node): string[] {
  if (ts.isStringLiteralLike(node)) return [node.text];
  const out: string[] = [];
  ts.forEachChild(node, (child) => void out.push(...stringLiterals(child)));
  return out;
}

/** An options object literal with its own `hint` (`hint: ...` or the shorthand `hint`), not `hint: undefined`. */
function passesHint(options: ts.Expression | undefined): boolean {
  if (options === undefined || !ts.isObjectLiteralExpression(options)) return false;
  return options.properties.some((property) => {
    if (ts.isShorthandPropertyAssignment(property)) return property.name.text === 'hint';
    if (!ts.isPropertyAssignment(property) || property.name.getText() !== 'hint') return false;
    return !(ts.isIdentifier(property.initializer) && property.initializer.text === 'undefined');
  });
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

const SRC_TEXTS = sourceFiles(path.join(REPO, 'src')).map((file) => ({
  name: path.relative(REPO, file),
  text: fs.readFileSync(file, 'utf8'),
}));
const SRC_CONSTRUCTIONS = SRC_TEXTS.flatMap(({ name, text }) => constructions(name, text));

describe('README "Error codes" table', () => {
  const rows = tableRows('Error codes');
  const documented = new Map(rows.map(([code = '', exit = '']) => [code.replace(/`/g, ''), exit]));

  it('has one row per catalog code (and no other), with the catalog exit code and summary', () => {
    expect(rows.length).toBeGreaterThan(20);
    const missing = CODES.filter((code) => !documented.has(code));
    const unknown = [...documented.keys()].filter((code) => !(code in ERROR_CATALOG));
    expect(missing, `codes missing from README's table; the catalog's table is:\n${catalogTable()}`).toEqual([]);
    expect(unknown, 'README names codes the catalog does not have').toEqual([]);
    expect(rows.length, 'a code has two rows').toBe(CODES.length);
    const wrongExit = CODES.filter((code) => documented.get(code) !== String(ExitCode[ERROR_CATALOG[code].exit]));
    expect(wrongExit, `exit codes in README differ from the catalog; the catalog's table is:\n${catalogTable()}`).toEqual([]);
    expect(tableLines('Error codes').join('\n'), 'the meanings or the order differ from the catalog').toBe(catalogTable());
  });
});

describe('README "Exit codes" table', () => {
  it('lists exactly the exit codes of ExitCode, each once', () => {
    const numbers = tableRows('Exit codes').map(([code = '']) => Number(code));
    const values: number[] = Object.values(ExitCode);
    expect(numbers.length).toBeGreaterThan(8);
    expect(new Set(values).size, 'two ExitCode names share a number').toBe(values.length);
    const ascending = (list: readonly number[]) => [...list].sort((a, b) => a - b);
    expect(ascending(numbers)).toEqual(ascending(values));
  });

  it('gives HOSTDEV_BUSY, the lock contention code, its own exit code 9', () => {
    expect(ExitCode.busy).toBe(9);
    expect(new HostdevError('HOSTDEV_BUSY', 'held').exitCode).toBe(9);
    expect(new HostdevError('HOSTDEV_TIMEOUT', 'stuck').exitCode).toBe(ExitCode.kernel);
  });
});

describe('new HostdevError( in src/', () => {
  it('finds every construction (the parser agrees with a plain text count)', () => {
    const textual = SRC_TEXTS.reduce((sum, { text }) => sum + (text.match(/\bnew (HostdevError|InUseError)\s*\(/g)?.length ?? 0), 0);
    expect(SRC_CONSTRUCTIONS.length).toBe(textual);
    expect(SRC_CONSTRUCTIONS.length).toBeGreaterThan(20);
  });

  it('passes a hint that says what to do next, every time', () => {
    expect(SRC_CONSTRUCTIONS.filter((c) => !c.hasHint).map((c) => c.where)).toEqual([]);
  });

  it('names catalog codes only, and raises every code that is not reserved', () => {
    const raised = new Set(SRC_CONSTRUCTIONS.flatMap((c) => c.codes));
    expect(SRC_CONSTRUCTIONS.filter((c) => c.codes.length === 0).map((c) => c.where), 'code not a string literal').toEqual([]);
    expect([...raised].filter((code) => !(code in ERROR_CATALOG))).toEqual([]);
    expect(CODES.filter((code) => !raised.has(code) && RESERVED[code] === undefined), 'never raised in src/').toEqual([]);
    expect(Object.keys(RESERVED).filter((code) => raised.has(code)), 'raised now: no longer reserved').toEqual([]);
  });

  it('the scan itself: balanced arguments across lines, shorthand, nested and missing hints', () => {
    const scan = (text: string): boolean[] => constructions('sample.ts', text).map((c) => c.hasHint);
    expect(scan("throw new HostdevError('HOSTDEV_USAGE', `a ${f(')')} (`, {\n  details: {},\n  hint: 'Do this.',\n});")).toEqual([true]);
    expect(scan("const hint = h(); return new HostdevError('HOSTDEV_STATE', m, { hint, details });")).toEqual([true]);
    expect(scan("new HostdevError('HOSTDEV_USAGE', 'x', { details: { hint: 'not here' } });")).toEqual([false]);
    expect(scan("new HostdevError('HOSTDEV_USAGE', 'x'); new HostdevError('HOSTDEV_USAGE', 'y', options);")).toEqual([false, false]);
    expect(scan("new HostdevError('HOSTDEV_USAGE', 'x', { hint: undefined });")).toEqual([false]);
    expect(constructions('s.ts', "new HostdevError(ok ? 'HOSTDEV_TIMEOUT' : 'HOSTDEV_BUSY', 'x')")[0]?.codes).toEqual([
      'HOSTDEV_TIMEOUT',
      'HOSTDEV_BUSY',
    ]);
  });
});
