import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * An npm package loaded when first asked for instead of when the importing module loads (a static
 * import would load it on every CLI run that loads the module): for packages that cost start-up
 * time and that most runs never use. The package must offer a CommonJS entry.
 */
export function lazyPackage<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
}
