import { createRequire } from 'node:module';

let require: NodeJS.Require | undefined;

/**
 * An npm package loaded when first asked for instead of when the importing module loads (a static
 * import would load it on every CLI run that loads the module): for packages that cost start-up
 * time and that most runs never use. The package must offer a CommonJS entry.
 */
export function lazyPackage<T>(name: string): () => T {
  let loaded: T | undefined;
  // The require is made on first use too: in the start-up snapshot import.meta.url is known only when it runs.
  return () => (loaded ??= (require ??= createRequire(import.meta.url))(name) as T);
}
