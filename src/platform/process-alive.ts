import { readFile } from 'node:fs/promises';

/** True while a process with this pid exists (EPERM: it exists, run by another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What kill(pid, 0) says: the process exists (ours, or EPERM: another user's), or ESRCH: it does not. */
export type SignalZero = (pid: number) => 'present' | 'absent';

export const signalZero: SignalZero = (pid) => (processAlive(pid) ? 'present' : 'absent');

/**
 * The start time of a process (field 22 of /proc/PID/stat, clock ticks since boot), read from the
 * real /proc: what tells a process from a later one given the same pid. Null when there is none.
 */
export async function processStartTime(pid: number, proc = '/proc'): Promise<string | null> {
  let stat: string;
  try {
    stat = await readFile(`${proc}/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const close = stat.lastIndexOf(')');
  const value = close < 0 ? undefined : stat.slice(close + 1).trim().split(/\s+/)[19];
  return value !== undefined && /^\d+$/.test(value) ? value : null;
}
