import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Builds dist/ once before the suite, so tests that spawn the CLI run the current code. */
export default function setup(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  execFileSync('bash', ['scripts/ensure-built.sh'], { cwd: root, stdio: 'inherit' });
}
