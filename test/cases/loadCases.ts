import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ExecutionCase {
  name: string;
  language: string;
  stdin?: string;
  args?: string[];
  file: { name: string; content: string };
  expect: { stdout?: string; code?: number; status?: string; stderrContains?: string; compileStatus?: string; compileStderrContains?: string };
}

/** Every case folder next to this file. */
export function loadCases(): ExecutionCase[] {
  return readdirSync(__dirname, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map(({ name }) => {
      const dir = join(__dirname, name);
      const spec = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as Omit<ExecutionCase, 'name' | 'file'>;
      const program = readdirSync(dir).find((file) => file !== 'case.json');
      if (!program) throw new Error(`case ${name} has no program`);
      return { name, ...spec, file: { name: program, content: readFileSync(join(dir, program), 'utf8') } };
    });
}

/** What a response must show for the case: the fields `expect` names, nothing else. */
export function expectedShape(c: ExecutionCase): Record<string, unknown> {
  const { stdout, code, status, stderrContains, compileStatus, compileStderrContains } = c.expect;
  const run: Record<string, unknown> = {};
  if (stdout !== undefined) run.stdout = stdout;
  if (code !== undefined) run.code = code;
  if (status !== undefined) run.status = status;
  if (stderrContains !== undefined) run.stderr = expect.stringContaining(stderrContains);
  const compile: Record<string, unknown> = {};
  if (compileStatus !== undefined) compile.status = compileStatus;
  if (compileStderrContains !== undefined) compile.stderr = expect.stringContaining(compileStderrContains);
  return { ...(Object.keys(run).length ? { run: expect.objectContaining(run) } : {}), ...(Object.keys(compile).length ? { compile: expect.objectContaining(compile) } : {}) };
}
