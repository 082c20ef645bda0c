/**
 * Ctrl-C (SIGINT) and SIGTERM for `watch`, caught from the first line of the CLI on: a stop that
 * comes while the rest of the CLI loads or the state opens ends the watch before it starts, with
 * the same exit code as a stop later on, instead of killing the process by the signal.
 */
let caught: Promise<string> | null = null;

/** Starts catching the stop signals (once); resolves with the first one's name. */
export function stopSignal(): Promise<string> {
  caught ??= new Promise((resolve) => {
    const stop = (signal: string): void => {
      // A second Ctrl-C while the watch stops (it waits for a prune in progress) ends it at once, by the signal.
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return caught;
}
