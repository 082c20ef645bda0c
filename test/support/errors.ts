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

/** Awaits `promise` and returns the HostdevError it rejects with; anything else (or a fulfilment) fails the test. */
export async function hostdevRejectionOf(promise: Promise<unknown>): Promise<HostdevError> {
  const error = await promise.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  if (error instanceof HostdevError) return error;
  throw error ?? new Error('expected a HostdevError');
}
