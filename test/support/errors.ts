import { HostdevError } from '../../src/core/errors.js';

/** Runs `fn` and returns the HostdevError it throws; anything else (or no throw) fails the test. */
export function hostdevErrorOf(fn: () => unknown): HostdevError {
  try {
    fn();
  } catch (error) {
    if (error instanceof HostdevError) return error;
    throw error;
  }
  throw new Error('expected a HostdevError');
}
