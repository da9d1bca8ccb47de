// The cluster project: the scenarios of every kind against cluster mode (scripts/up.sh --cluster),
// from outside over HTTP. Run by scripts/test-cluster.sh, which brings cluster mode up first and
// gives these tests its addresses (CLUSTER_* variables); not part of jest.config.js's projects.
/** @type {import('jest').Config} */
module.exports = {
  displayName: 'cluster',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testMatch: ['<rootDir>/test/cluster/**/*.test.ts'],
  testTimeout: 120_000,
  forceExit: true,
  maxWorkers: 1,
};
