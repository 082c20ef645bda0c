import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** The import graph of a source tree, and the checks the architecture test makes on it. */

/** A module specifier as written, or null for a dynamic import() of something other than a literal. */
export interface ImportSite {
  readonly specifier: string | null;
  readonly line: number;
}

/**
 * Every import of a file: `import ... from`, `import '...'`, `export ... from`, `import('...')`
 * and `import('...')` types. Read from the syntax tree, so comments and strings are not imports.
 */
export function importSites(fileName: string, text: string): ImportSite[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const sites: ImportSite[] = [];
  const add = (node: ts.Node, specifier: string | null): void => {
    sites.push({ specifier, line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined) {
      add(node, ts.isStringLiteral(node.moduleSpecifier) ? node.moduleSpecifier.text : null);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      add(node, argument !== undefined && ts.isStringLiteralLike(argument) ? argument.text : null);
    } else if (ts.isImportTypeNode(node)) {
      const argument = node.argument;
      add(node, ts.isLiteralTypeNode(argument) && ts.isStringLiteral(argument.literal) ? argument.literal.text : null);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return sites;
}

/** One import: between two files of the tree (paths relative to its root), or of a package. */
export interface ImportEdge {
  readonly from: string;
  /** The imported file, or the package specifier when `external`. */
  readonly to: string;
  readonly line: number;
  readonly external: boolean;
}

export interface ImportGraph {
  readonly files: readonly string[];
  readonly edges: readonly ImportEdge[];
  /** Relative imports that name no file of the tree, and imports of no literal specifier. */
  readonly unresolved: readonly string[];
}

/** Builds the graph of `sources` (relative path -> text). Relative specifiers name .ts files by their .js name. */
export function importGraph(sources: ReadonlyMap<string, string>): ImportGraph {
  const edges: ImportEdge[] = [];
  const unresolved: string[] = [];
  for (const [from, text] of sources) {
    for (const { specifier, line } of importSites(from, text)) {
      if (specifier === null) {
        unresolved.push(`${from}:${line}: an import of no literal specifier`);
      } else if (!specifier.startsWith('.')) {
        edges.push({ from, to: specifier, line, external: true });
      } else {
        const to = path.posix.join(path.posix.dirname(from), specifier).replace(/\.js$/, '.ts');
        if (sources.has(to)) edges.push({ from, to, line, external: false });
        else unresolved.push(`${from}:${line}: ${specifier} is no file of the tree`);
      }
    }
  }
  return { files: [...sources.keys()], edges, unresolved };
}

/** The .ts files under `root`, by path relative to it (posix separators). */
export function readSources(root: string): Map<string, string> {
  const sources = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) sources.set(path.relative(root, full).split(path.sep).join('/'), readFileSync(full, 'utf8'));
    }
  };
  walk(root);
  return sources;
}

export interface LayerRule {
  /** The other layers this one may import (its own files it always may). */
  readonly imports: readonly string[];
  /** Whether it may import packages and Node.js modules. */
  readonly packages: boolean;
}

/** A file's layer: its top folder, or the file itself at the top. */
export function layerOf(file: string): string {
  const slash = file.indexOf('/');
  return slash === -1 ? file : file.slice(0, slash);
}

/** The edges `rules` do not allow, one line each: "core/a.ts:3 -> sysfs/b.ts (core may import: nothing)". */
export function ruleBreaks(graph: ImportGraph, rules: Readonly<Record<string, LayerRule>>): string[] {
  const breaks: string[] = [];
  for (const edge of graph.edges) {
    const layer = layerOf(edge.from);
    const rule = rules[layer];
    const site = `${edge.from}:${edge.line} -> ${edge.to}`;
    if (rule === undefined) {
      breaks.push(`${site} (${layer} has no rule)`);
    } else if (edge.external) {
      if (!rule.packages) breaks.push(`${site} (${layer} may import no package)`);
    } else {
      const target = layerOf(edge.to);
      if (target !== layer && !rule.imports.includes(target)) {
        breaks.push(`${site} (${layer} may import: ${rule.imports.length > 0 ? rule.imports.join(', ') : 'nothing'})`);
      }
    }
  }
  return breaks;
}

/**
 * The import cycles between files: one per strongly connected component (Tarjan), spelt as the
 * shortest cycle through its first file, "a.ts -> b.ts -> a.ts".
 */
export function importCycles(graph: ImportGraph): string[] {
  const next = new Map<string, string[]>(graph.files.map((file) => [file, []]));
  for (const edge of graph.edges) if (!edge.external) next.get(edge.from)?.push(edge.to);

  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const connect = (file: string): void => {
    index.set(file, index.size);
    low.set(file, index.get(file)!);
    stack.push(file);
    onStack.add(file);
    for (const to of next.get(file) ?? []) {
      if (!index.has(to)) {
        connect(to);
        low.set(file, Math.min(low.get(file)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(file, Math.min(low.get(file)!, index.get(to)!));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || next.get(file)?.includes(file)) components.push(component.sort());
  };
  for (const file of graph.files) if (!index.has(file)) connect(file);

  return components.map((component) => shortestCycle(component[0]!, new Set(component), next).join(' -> ')).sort();
}

function shortestCycle(start: string, within: ReadonlySet<string>, next: ReadonlyMap<string, readonly string[]>): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const file = queue[i]!;
    for (const to of next.get(file) ?? []) {
      if (to === start) {
        const cycle = [start];
        for (let back: string | undefined = file; back !== undefined && back !== start; back = cameFrom.get(back)) cycle.splice(1, 0, back);
        return [...cycle, start];
      }
      if (within.has(to) && !cameFrom.has(to)) {
        cameFrom.set(to, file);
        queue.push(to);
      }
    }
  }
  return [start];
}
