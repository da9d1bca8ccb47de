// One jest run, five projects (pick with --selectProjects). One Temporal dev server, the tests'
// namespace on it and one workflow bundle for the whole run come from test/globalSetup.ts;
// test/globalTeardown.ts ends what the run left running.
const transform = { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] };
const project = (name, extra = {}) => ({
  displayName: name,
  testEnvironment: 'node',
  transform,
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  testTimeout: 60_000,
  ...extra,
});

/** @type {import('jest').Config} */
module.exports = {
  globalSetup: '<rootDir>/test/globalSetup.ts',
  globalTeardown: '<rootDir>/test/globalTeardown.ts',
  transform,
  testTimeout: 60_000,
  // The Temporal native bridge can hold the event loop after teardown.
  forceExit: true,
  maxWorkers: 2,
  projects: [
    project('unit'),
    project('workflows'),
    project('replay'),
    project('integration'),
    project('e2e'),
  ],
};
