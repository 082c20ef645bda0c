import { HostdevError, type HostdevErrorDetails } from './errors.js';
import type { Owner } from './tables.js';

/**
 * HOSTDEV_IN_USE: a device a domain holds. The domain comes typed as `owner` for callers in this
 * process (an assign that checks that domain's holder); `details.owner` says the same in the JSON.
 */
export class InUseError extends HostdevError {
  readonly owner: Owner;

  constructor(message: string, options: { readonly hint: string; readonly details: HostdevErrorDetails & { readonly owner: Owner } }) {
    super('HOSTDEV_IN_USE', message, options);
    this.owner = options.details.owner;
  }
}
