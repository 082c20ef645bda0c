import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * At most `maxBytes` of a file, as text (UTF-8). Files under --root come from
 * whoever made the tree: a 10 GB uevent or mounts file must not keep hostdev reading for minutes
 * or fill its heap.
 */
export function readHeadSync(file: string, maxBytes: number): string {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(maxBytes);
    let length = 0;
    while (length < maxBytes) {
      const n = readSync(fd, buffer, length, maxBytes - length, null);
      if (n === 0) break;
      length += n;
    }
    return buffer.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}

export async function readHead(file: string, maxBytes: number): Promise<string> {
  return (await readHeadBytes(file, maxBytes)).toString('utf8');
}

/** At most `maxBytes` of a file, as bytes (a binary sysfs attribute: config, vpd). */
export async function readHeadBytes(file: string, maxBytes: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(maxBytes);
    let length = 0;
    while (length < maxBytes) {
      const { bytesRead } = await handle.read(buffer, length, maxBytes - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}
