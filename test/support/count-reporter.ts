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
    const skippedLines: string[] = [];
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else {
          skipped++;
          const note = (test.result() as { note?: string }).note;
          skippedLines.push(`skipped: ${mod.moduleId.replace(`${process.cwd()}/`, '')} > ${test.fullName}${note ? ` (${note})` : ''}`);
        }
      }
      // A module that failed to load has no tests but is a failure.
      if (mod.state() === 'failed' && [...mod.children.allTests()].length === 0) failed++;
    }
    failed += unhandledErrors.length;
    if (passed + failed === 0) {
      process.exitCode = 1;
      console.log('no test was executed: this run is a failure');
    }
    for (const line of skippedLines) console.log(line);
    const skippedPart = skipped > 0 ? `, ${skipped} skipped` : '';
    console.log(`tests: ${passed} passed, ${failed} failed${skippedPart}`);
  }
}
