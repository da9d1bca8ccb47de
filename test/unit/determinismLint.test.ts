import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '../..');

/** Lints a snippet as if it lived at `filePath`, with the project's rules (type-aware ones aside). */
function lint(filePath: string, code: string): string {
  const result = spawnSync(
    process.execPath,
    [join(root, 'node_modules/eslint/bin/eslint.js'), '--stdin', '--stdin-filename', filePath, '--parser-options', 'projectService:false',
      '--rule', '@typescript-eslint/no-floating-promises: off', '--rule', '@typescript-eslint/no-misused-promises: off', '--format', 'stylish'],
    { cwd: root, input: code, encoding: 'utf8' },
  );
  return result.stdout;
}

describe('the determinism lint', () => {
  it('refuses a Node built-in in workflow code', () => {
    expect(lint('workflows/probe.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n")).toMatch(/no Node built-ins here/);
    expect(lint('domain/probe.ts', "import crypto from 'crypto';\nexport const x = crypto;\n")).toMatch(/no Node built-ins here/);
  });

  it('holds in every kind\'s folder and the shared ones', () => {
    expect(lint('workflows/pxe/probe.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n")).toMatch(/no Node built-ins here/);
    expect(lint('workflows/shared/probe.ts', 'setInterval(() => undefined, 10);\n')).toMatch(/workflow timer loop/);
    expect(lint('domain/shared/probe.ts', "import { randomUUID } from 'node:crypto';\nexport const x = randomUUID;\n")).toMatch(/no Node built-ins here/);
    expect(lint('workflows/sandbox/probe.ts', "import { createSandboxActivities } from '../../activities/sandbox/sandbox';\nexport const x = createSandboxActivities;\n")).toMatch(/as types only/);
  });

  it('refuses timers and activity implementations in workflow code', () => {
    expect(lint('workflows/probe.ts', 'setTimeout(() => undefined, 10);\n')).toMatch(/Use sleep\(\)/);
    expect(lint('workflows/probe.ts', "import { createActivities } from '../activities';\nexport const x = createActivities;\n")).toMatch(/as types only/);
  });

  it('allows the same code outside workflows', () => {
    expect(lint('activities/probe.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n")).toBe('');
  });
});
