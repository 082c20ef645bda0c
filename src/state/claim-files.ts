import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { PciAddress } from '../core/address.js';
import { claimFileName, claimFileText, CLAIMS_SUBDIR, parseClaimFile, sortClaims, type Claim } from '../core/claims.js';

/**
 * Claims persisted as definitions under the config directory (CONFIG/claims.d/pci-ADDRESS), as
 * driverctl keeps its overrides in /etc/driverctl.d: configuration the operator owns, read at boot
 * by the initramfs script, the udev rules and `claims apply`, not rows of the state database.
 */

export interface ClaimDefinitions {
  readonly claims: readonly Claim[];
  /** Files in claims.d that are not claims (named, with why). */
  readonly warnings: readonly string[];
}

export function claimsDir(configDir: string): string {
  return path.join(configDir, CLAIMS_SUBDIR);
}

/** Every claim defined; a missing directory is no claim. Small files only (a claim is a few lines). */
export async function readClaims(configDir: string): Promise<ClaimDefinitions> {
  const dir = claimsDir(configDir);
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  const claims: Claim[] = [];
  const warnings: string[] = [];
  for (const name of names.filter((n) => n.startsWith('pci-')).sort()) {
    const file = path.join(dir, name);
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => `\0${error.code ?? error.message}`);
    const parsed = text.startsWith('\0') ? `unreadable (${text.slice(1)})` : text.length > 4096 ? 'larger than a claim' : parseClaimFile(text);
    if (typeof parsed === 'string') warnings.push(`${file} is not a claim: ${parsed}; left out`);
    else if (name !== claimFileName(parsed.address)) warnings.push(`${file} names ${parsed.address}; a claim file is named ${claimFileName(parsed.address)}: left out`);
    else claims.push(parsed);
  }
  return { claims: sortClaims(claims), warnings };
}

/** Replaces a file whole (written aside, renamed over), so a reader at boot sees the old or the new text. */
export async function writeWhole(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  const aside = `${file}.tmp-${process.pid}`;
  await writeFile(aside, text, { mode: 0o644 });
  await rename(aside, file);
}

export async function writeClaim(configDir: string, claim: Claim): Promise<string> {
  const file = path.join(claimsDir(configDir), claimFileName(claim.address));
  await writeWhole(file, claimFileText(claim));
  return file;
}

export async function removeClaim(configDir: string, address: PciAddress): Promise<string> {
  const file = path.join(claimsDir(configDir), claimFileName(address));
  await rm(file, { force: true });
  return file;
}
