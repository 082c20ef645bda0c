import type { Reporter, TestModule } from 'vitest/node';

/**
 * Prints the closing line CI reads: `tests: N passed, N failed`.
 * A run that executed no test is made to fail: an empty run proves nothing.
 */
export default class CountReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      // A module that failed to load has no tests but is a failure.
      if (mod.state() === 'failed' && [...mod.children.allTests()].length === 0) failed++;
    }
    failed += unhandledErrors.length;
    if (passed + failed === 0) {
      process.exitCode = 1;
      console.log('no test was executed: this run is a failure');
    }
    const skippedPart = skipped > 0 ? `, ${skipped} skipped` : '';
    console.log(`tests: ${passed} passed, ${failed} failed${skippedPart}`);
  }
}
