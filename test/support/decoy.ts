import fs from 'node:fs';
import path from 'node:path';

/**
 * Every entry under a directory, links not followed: its kind, mode, bytes or link target. Two
 * equal pictures mean nothing under the directory was written, created, removed or renamed.
 */
export function picture(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (at: string): void => {
    const stat = fs.lstatSync(at);
    const rel = path.relative(dir, at) || '.';
    const mode = (stat.mode & 0o7777).toString(8);
    if (stat.isSymbolicLink()) out[rel] = `link ${fs.readlinkSync(at)}`;
    else if (stat.isDirectory()) {
      out[rel] = `dir ${mode}`;
      for (const name of fs.readdirSync(at).sort()) walk(path.join(at, name));
    } else if (stat.isFile()) out[rel] = `file ${mode} ${fs.readFileSync(at).toString('base64')}`;
    else out[rel] = `other ${stat.mode.toString(8)}`;
  };
  walk(dir);
  return out;
}

/** A decoy outside the root: a directory with a few files of its own, and copies placed in it. */
export function makeDecoy(dir: string): string {
  fs.mkdirSync(path.join(dir, 'precious/nested'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'precious/keep'), 'unrelated data\n');
  fs.writeFileSync(path.join(dir, 'precious/nested/deeper'), 'more unrelated data\n');
  fs.writeFileSync(path.join(dir, 'file'), 'a file\n');
  return dir;
}

/** Copies a directory of the tree into the decoy, links kept as they are (cp -a). */
export function copyInto(decoy: string, from: string, name: string): string {
  const to = path.join(decoy, name);
  fs.cpSync(from, to, { recursive: true, verbatimSymlinks: true });
  return to;
}

/** Replaces `link` (whatever it is) with a symlink to `target`. */
export function pointAt(link: string, target: string): void {
  fs.rmSync(link, { recursive: true, force: true });
  fs.symlinkSync(target, link);
}
