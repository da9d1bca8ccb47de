// Lint is where workflow determinism is enforced: workflow and domain code is replayed, so it
// may not reach Node's built-ins (clock, fs, net, crypto) and may not drop a promise on the floor.
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((name) => `node:${name}`)];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'eslint.config.mjs', 'jest.config.js', 'jest.cluster.config.js'] },
  // The execution test cases are programs for the sandbox, not project code.
  { ignores: ['test/cases/*/**'] },
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['workflows/**/*.ts', 'domain/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: nodeBuiltins.map((name) => ({ name, message: 'Workflow and domain code is replayed: no Node built-ins here. Do I/O in an activity.' })),
        patterns: [{ group: ['**/activities/*', '**/activities'], allowTypeImports: true, message: 'Workflows import activities as types only.' }],
      }],
      'no-restricted-globals': ['error',
        { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow.' },
        { name: 'setInterval', message: 'Use a workflow timer loop.' },
        { name: 'process', message: 'No process state in workflow code.' },
      ],
    },
  },
);
