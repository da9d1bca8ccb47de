/**
 * The Temporal namespace tests run in: their own, so nothing they start shows in the default
 * namespace the user watches in the Web UI. scripts/test.sh exports it (scripts/lib.sh names
 * the same default); a bare `npx jest` gets the default, created by test/globalSetup.ts.
 */
export function testNamespace(): string {
  return process.env.TEMPORAL_NAMESPACE ?? 'sessionflow-test';
}

/**
 * Every task queue a test makes starts with this, so a run's teardown ends what that run left
 * running and nothing of another run sharing the server. globalSetup picks the run's id.
 */
export function runTaskQueuePrefix(): string {
  return `test-${process.env.SF_TEST_RUN ?? 'adhoc'}-`;
}
