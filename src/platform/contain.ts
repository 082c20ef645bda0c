import fs from 'node:fs';
import path from 'node:path';

/**
 * Containment under --root: every path hostdev (or the simulated kernel) writes, creates, removes
 * or renames must lie inside the root once its links are resolved. A tree can hold links that
 * lead out of it (a device's bus link, a driver directory, virtfnN, physfn, iommu_group, net);
 * following one would change files that have nothing to do with the host being managed.
 */

/** A path under the root that a link leads out of it; `link` is the link as found under the root. */
export class OutsideRootError extends Error {
  override readonly name = 'OutsideRootError';
  constructor(
    readonly root: string,
    readonly link: string,
    readonly target: string,
  ) {
    super(`${link} is a link to ${target}, outside the root ${root}`);
  }
}

const realRoots = new Map<string, string>();

/** The root with its own links resolved (a root may itself be reached through a link, /tmp on some hosts). */
function realRoot(root: string): string {
  const absolute = path.resolve(root);
  let real = realRoots.get(absolute);
  if (real === undefined) {
    real = fs.realpathSync(absolute);
    realRoots.set(absolute, real);
  }
  return real;
}

export function isInside(root: string, candidate: string): boolean {
  return candidate === root || root === '/' || candidate.startsWith(`${root}/`);
}

/**
 * The real path of `target` (a path under `root`, absolute or relative to it), each link on the
 * way resolved and checked: a link that leads outside the root throws OutsideRootError naming it.
 * Components that do not exist yet are appended as they are (they cannot be links). With
 * `followLast: false` the last component is not resolved when it is a link: that is what removing
 * or replacing a link touches (the link itself, never what it points at).
 */
export function resolveInside(root: string, target: string, options: { followLast?: boolean } = {}, depth = 0): string {
  if (depth > 40) throw Object.assign(new Error(`too many levels of links resolving ${target}`), { code: 'ELOOP' });
  const base = realRoot(root);
  const given = path.resolve(path.resolve(root), target);
  const relative = path.relative(path.resolve(root), given);
  if (relative.startsWith('..') || path.isAbsolute(relative)) throw new OutsideRootError(path.resolve(root), given, given);
  const parts = relative === '' ? [] : relative.split(path.sep);
  let current = base;
  let shown = path.resolve(root);
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const next = path.join(current, part);
    shown = path.join(shown, part);
    const last = i === parts.length - 1;
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(next);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
      return path.join(current, ...parts.slice(i));
    }
    if (!stat.isSymbolicLink() || (last && options.followLast === false)) {
      current = next;
      continue;
    }
    const pointed = path.resolve(current, fs.readlinkSync(next));
    let resolved: string;
    try {
      resolved = fs.realpathSync(pointed);
    } catch {
      // A dangling link: where it would lead once its target is made.
      resolved = pointed;
    }
    if (!isInside(base, resolved)) throw new OutsideRootError(path.resolve(root), shown, resolved);
    // A link that stays inside may still end in a dangling one that leads out.
    if (resolved === pointed && !fs.existsSync(resolved)) resolved = resolveInside(root, path.relative(base, pointed), {}, depth + 1);
    current = resolved;
  }
  return current;
}

/**
 * File changes that stay inside one root: each resolves its path with resolveInside first. Files
 * are opened with O_NOFOLLOW on their resolved path, so a link swapped in meanwhile is not followed.
 */
export class ContainedFs {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  resolve(target: string, followLast = true): string {
    return resolveInside(this.root, target, { followLast });
  }

  /** The directory's real path; throws OutsideRootError when it leads out of the root. */
  dir(target: string): string {
    return this.resolve(target);
  }

  writeFile(target: string, content: string | Buffer, options: { mode?: number; append?: boolean; encoding?: BufferEncoding } = {}): void {
    const real = this.resolve(target);
    const { O_WRONLY, O_CREAT, O_TRUNC, O_APPEND, O_NOFOLLOW } = fs.constants;
    const fd = fs.openSync(real, O_WRONLY | O_CREAT | O_NOFOLLOW | (options.append === true ? O_APPEND : O_TRUNC), options.mode ?? 0o666);
    try {
      fs.writeFileSync(fd, content, options.encoding === undefined ? undefined : { encoding: options.encoding });
    } finally {
      fs.closeSync(fd);
    }
  }

  appendFile(target: string, content: string): void {
    this.writeFile(target, content, { append: true });
  }

  mkdir(target: string): void {
    fs.mkdirSync(this.resolve(target), { recursive: true });
  }

  /** Removes a file, a link (never what it points at) or, with `recursive`, a directory. */
  rm(target: string, options: { recursive?: boolean } = {}): void {
    fs.rmSync(this.resolve(target, false), { force: true, recursive: options.recursive === true });
  }

  unlink(target: string): void {
    fs.unlinkSync(this.resolve(target, false));
  }

  symlink(linkTarget: string, link: string): void {
    fs.symlinkSync(linkTarget, this.resolve(link, false));
  }

  rename(from: string, to: string): void {
    fs.renameSync(this.resolve(from, false), this.resolve(to, false));
  }

  chmod(target: string, mode: number): void {
    fs.chmodSync(this.resolve(target), mode);
  }
}
