import { closeSync, existsSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import os from 'node:os';
import { collectConfig } from './config-space.js';
import { errnoOf } from './errno.js';

/**
 * The ops of a batch read: the same few entries of every PCI function, named once and done for
 * each function. Two executors do them: native/sysfs-batch.c (the fast one, a program of its own)
 * and `OpExecutor` here (in-process, and in the Node.js child when the program is missing). Both
 * hand back the same results, so what is made of them does not depend on who read.
 */
type OpKind =
  /** readlink */
  | 'link'
  /** the first 4,096 bytes of a file, in one read */
  | 'read'
  /** the names in a directory */
  | 'list'
  /** PCI config space: the header and the capability list, as chunks (see collectConfig) */
  | 'config';

export interface BatchOp {
  readonly kind: OpKind;
  /** The entry's own file; '' for the entry itself. */
  readonly file: string;
  /**
   * Absent from most functions (physfn, sriov_*, net): the in-process executor looks before it
   * reads, for a failed open costs Node.js an exception (the native program just gets ENOENT).
   */
  readonly mayBeAbsent?: boolean;
}

/** Ops by name, as a reader is handed them (a list) and where each one's result is in it. */
export interface NamedOps<Name extends string> {
  readonly list: readonly BatchOp[];
  readonly index: Readonly<Record<Name, number>>;
}

/** The ops of a record in its key order, and each name's position: results are then taken by name, never by a fixed number. */
export function namedOps<Name extends string>(ops: Readonly<Record<Name, BatchOp>>): NamedOps<Name> {
  const names = Object.keys(ops) as Name[];
  return { list: names.map((name) => ops[name]), index: Object.fromEntries(names.map((name, at) => [name, at])) as Record<Name, number> };
}

interface OpResult {
  /** The errno name ("ENOENT", ...) when the op failed, else null. */
  readonly errno: string | null;
  readonly data: Uint8Array;
}

const EMPTY = new Uint8Array(0);
const ABSENT: OpResult = { errno: 'ENOENT', data: EMPTY };
const KIND_LETTER: Record<OpKind, string> = { link: 'L', read: 'R', list: 'D', config: 'P' };

/** The op as the native program's command line names it: "L", "R:vendor", "P:config". */
export function opSpec(op: BatchOp): string {
  const letter = KIND_LETTER[op.kind];
  return op.file === '' ? letter : `${letter}:${op.file}`;
}

const LETTER_KIND: Record<string, OpKind> = { L: 'link', R: 'read', D: 'list', P: 'config' };

/** opSpec's inverse; null for anything else. */
export function parseOpSpec(spec: string): BatchOp | null {
  const kind = LETTER_KIND[spec[0] ?? ''];
  if (kind === undefined) return null;
  if (spec.length === 1) return kind === 'link' ? { kind, file: '' } : null;
  const file = spec.slice(2);
  return spec[1] === ':' && file.length > 0 && !file.includes('/') ? { kind, file } : null;
}

/** Where an attribute's text ends in bytes[start, end): before the newline (and NULs) sysfs ends it with. */
function textEnd(bytes: Uint8Array, start: number, end: number): number {
  while (end > start && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x00)) end--;
  return end;
}

/** A little-endian u32 (the lengths and errnos of the wire form fit in 31 bits). */
function u32(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
}

let errnoNames: Map<number, string> | null = null;

export function errnoName(code: number): string {
  if (errnoNames === null) {
    errnoNames = new Map();
    for (const [name, value] of Object.entries(os.constants.errno)) if (!errnoNames.has(value)) errnoNames.set(value, name);
  }
  return errnoNames.get(code) ?? `errno ${code}`;
}

const ERRNO_NUMBERS = os.constants.errno as Record<string, number | undefined>;

/** The wire form of results, as the native program writes it: errno, length (u32 LE), bytes. */
export function encodeResults(results: readonly OpResult[]): Buffer {
  let size = 0;
  for (const result of results) size += 8 + (result.errno === null ? result.data.length : 0);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const result of results) {
    const ok = result.errno === null;
    out.writeUInt32LE(ok ? 0 : (ERRNO_NUMBERS[result.errno!] ?? 5 /* EIO */), at);
    out.writeUInt32LE(ok ? result.data.length : 0, at + 4);
    at += 8;
    if (ok) {
      out.set(result.data, at);
      at += result.data.length;
    }
  }
  return out;
}

/** Results by index, from the wire (BatchResults) or from this process's own reads (ResultList). */
export interface Results {
  /** The errno name when result `i` failed, else null. */
  errno(i: number): string | null;
  data(i: number): Uint8Array;
  /** The bytes as text, without the trailing newline (and NULs) sysfs attributes end with. */
  text(i: number): string;
  link(i: number): string;
  /** The names a `list` result holds. */
  names(i: number): string[];
}

/** The results of reads done in this process. */
export class ResultList implements Results {
  constructor(private readonly results: readonly OpResult[]) {}

  errno(i: number): string | null {
    return this.results[i]!.errno;
  }
  data(i: number): Uint8Array {
    return this.results[i]!.data;
  }
  text(i: number): string {
    const data = this.data(i);
    return Buffer.from(data.buffer, data.byteOffset, textEnd(data, 0, data.length)).toString('latin1');
  }
  link(i: number): string {
    const data = this.data(i);
    return Buffer.from(data.buffer, data.byteOffset, data.length).toString('utf8');
  }
  names(i: number): string[] {
    return this.link(i).split('\0').slice(0, -1);
  }
}

/**
 * Results as the wire form holds them, made sense of without an object per result: a reader of a
 * large host hands back some 60,000 of them, read once each.
 */
export class BatchResults implements Results {
  private constructor(
    private readonly bytes: Buffer,
    /** errno, start, length of each result */
    private readonly meta: Int32Array,
  ) {}

  /** Reads `count` results from the wire form; throws when it is cut short or has bytes left over. */
  static decode(wire: Uint8Array, count: number): BatchResults {
    const bytes = Buffer.from(wire.buffer, wire.byteOffset, wire.length);
    const meta = new Int32Array(count * 3);
    let at = 0;
    for (let i = 0; i < count; i++) {
      if (at + 8 > bytes.length) throw new Error(`the sysfs reader stopped after ${i} of ${count} results`);
      const code = bytes.readUInt32LE(at);
      const length = bytes.readUInt32LE(at + 4);
      at += 8;
      if (at + length > bytes.length) throw new Error(`the sysfs reader stopped inside result ${i} of ${count}`);
      meta[i * 3] = code;
      meta[i * 3 + 1] = at;
      meta[i * 3 + 2] = length;
      at += length;
    }
    if (at !== bytes.length) throw new Error(`the sysfs reader wrote ${bytes.length - at} bytes more than ${count} results`);
    return new BatchResults(bytes, meta);
  }

  /**
   * The whole entries (`perEntry` results each) at the start of `wire`, at most `maxEntries`, and
   * the bytes they take: a reader's output is made sense of while it still reads.
   */
  static decodeEntries(wire: Buffer, perEntry: number, maxEntries: number): { results: BatchResults; entries: number; bytes: number } {
    const meta = new Int32Array(Math.min(maxEntries, Math.floor(wire.length / (8 * perEntry))) * perEntry * 3);
    const end = wire.length;
    let at = 0;
    let entries = 0;
    let m = 0;
    while (entries < maxEntries) {
      let cursor = at;
      let i = 0;
      for (; i < perEntry; i++) {
        if (cursor + 8 > end) break;
        const length = u32(wire, cursor + 4);
        if (cursor + 8 + length > end) break;
        meta[m + i * 3] = u32(wire, cursor);
        meta[m + i * 3 + 1] = cursor + 8;
        meta[m + i * 3 + 2] = length;
        cursor += 8 + length;
      }
      if (i < perEntry) break;
      m += perEntry * 3;
      at = cursor;
      entries++;
    }
    return { results: new BatchResults(wire, meta.subarray(0, m)), entries, bytes: at };
  }

  get count(): number {
    return this.meta.length / 3;
  }

  /** The errno name when result `i` failed, else null. */
  errno(i: number): string | null {
    const code = this.meta[i * 3]!;
    return code === 0 ? null : errnoName(code);
  }

  data(i: number): Uint8Array {
    const start = this.meta[i * 3 + 1]!;
    return this.bytes.subarray(start, start + this.meta[i * 3 + 2]!);
  }

  /** The bytes as text, without the trailing newline (and NULs) sysfs attributes end with. */
  text(i: number): string {
    const start = this.meta[i * 3 + 1]!;
    return this.bytes.toString('latin1', start, textEnd(this.bytes, start, start + this.meta[i * 3 + 2]!));
  }

  link(i: number): string {
    const start = this.meta[i * 3 + 1]!;
    return this.bytes.toString('utf8', start, start + this.meta[i * 3 + 2]!);
  }

  /** The names a `list` result holds. */
  names(i: number): string[] {
    const names: string[] = [];
    let start = this.meta[i * 3 + 1]!;
    const end = start + this.meta[i * 3 + 2]!;
    for (let at = start; at < end; at++) {
      if (this.bytes[at] === 0) {
        names.push(this.bytes.toString('utf8', start, at));
        start = at + 1;
      }
    }
    return names;
  }
}

/**
 * Whether something is at `path`, as the op would find it: a link itself (dangling or not), else
 * what it points at. True when unsure: the op then says why.
 */
function present(path: string, kind: OpKind): boolean {
  if (kind !== 'link') return existsSync(path);
  try {
    return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return true;
  }
}

/**
 * Does the ops for one entry of `dir` in this process, as the native program does them. Sync:
 * only for files no kernel lock can hold up, or in a child that may be abandoned.
 */
export class OpExecutor {
  private readonly buffer = Buffer.allocUnsafe(4096);

  /** `onOp`: hears each path before it is read (a reader's progress notes, see read-progress.ts). */
  constructor(private readonly onOp?: (path: string) => void) {}

  run(dir: string, entry: string, ops: readonly BatchOp[]): OpResult[] {
    return ops.map((op) => {
      const path = op.file === '' ? `${dir}/${entry}` : `${dir}/${entry}/${op.file}`;
      return op.mayBeAbsent === true && !present(path, op.kind) ? ABSENT : this.one(path, op.kind);
    });
  }

  one(path: string, kind: OpKind): OpResult {
    this.onOp?.(path);
    try {
      switch (kind) {
        case 'link':
          return { errno: null, data: Buffer.from(readlinkSync(path), 'utf8') };
        case 'list':
          return { errno: null, data: Buffer.from(readdirSync(path).map((name) => `${name}\0`).join(''), 'utf8') };
        case 'read':
          return this.read(path);
        case 'config':
          return this.config(path);
      }
    } catch (error) {
      return { errno: errnoOf(error), data: EMPTY };
    }
  }

  private read(path: string): OpResult {
    const fd = openSync(path, 'r');
    try {
      const size = readSync(fd, this.buffer, 0, this.buffer.length, 0);
      return { errno: null, data: Buffer.from(this.buffer.subarray(0, size)) };
    } finally {
      closeSync(fd);
    }
  }

  private config(path: string): OpResult {
    const fd = openSync(path, 'r');
    try {
      return {
        errno: null,
        data: collectConfig((offset, length) => {
          try {
            const size = readSync(fd, this.buffer, 0, Math.min(length, this.buffer.length), offset);
            return this.buffer.subarray(0, size);
          } catch {
            return EMPTY;
          }
        }),
      };
    } finally {
      closeSync(fd);
    }
  }
}
