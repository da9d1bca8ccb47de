import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createUserKey } from '../../api/auth';
import { readExecutionResult } from '../../activities/executionRecords';
import { findRuntime, runtimes, type ExecutionJob, type RuntimeSpec } from '../../domain/execution';
import { openInfra, type Infra } from '../helpers/infra';

let infra: Infra;
let containerId: string;
let ownerId: string;
beforeAll(async () => {
  infra = openInfra();
  containerId = await infra.activities.createExecutionContainer({ name: `sf-exec-test-${randomUUID().slice(0, 8)}`, image: infra.config.EXECUTION_IMAGE, runtime: 'python', pool: 'integration-test' });
  ({ userId: ownerId } = await createUserKey(infra.pool, `exec-${randomUUID().slice(0, 8)}`, 'user', 'test'));
});
afterAll(async () => {
  await infra.activities.removeExecutionContainer({ containerId });
  await infra.close();
});

function job(runtime: RuntimeSpec, code: string, extra: Partial<ExecutionJob> = {}): ExecutionJob {
  return {
    requestId: randomUUID(), language: runtime.language, version: runtime.version,
    files: [{ name: runtime.defaultFile, content: Buffer.from(code).toString('base64') }],
    stdin: '', args: [], outputLimit: 65536,
    run: { command: runtime.run, timeoutMs: 3000, memoryLimit: -1 },
    ...extra,
  };
}
const python = findRuntime('python', '*')!;

describe('execution containers', () => {
  it('hold every runtime of the catalogue at the version it reports', () => {
    const versionOf: Record<string, string[]> = { python: ['python3', '--version'], javascript: ['node', '--version'], bash: ['bash', '--version'], c: ['gcc', '--version'] };
    for (const runtime of runtimes) {
      expect(execFileSync('docker', ['exec', containerId, ...versionOf[runtime.language]!], { encoding: 'utf8' })).toContain(runtime.version);
    }
  });

  it('run a program as nobody, record the full result and return it cut for history', async () => {
    const runJob = job(python, 'import os\nname = input()\nprint(f"Hello, {name}", os.getuid())\nprint("y" * 100)', { stdin: 'Alice' });
    const { result, truncated } = await infra.activities.runInContainer({ containerId, job: runJob, ownerId, historyOutputCap: 20 });
    expect(truncated).toBe(true);
    expect(result.run?.stdout).toBe('Hello, Alice 65534\ny');
    const recorded = await readExecutionResult(infra.pool, runJob.requestId, ownerId);
    expect(recorded?.run).toMatchObject({ stdout: `Hello, Alice 65534\n${'y'.repeat(100)}\n`, code: 0, signal: null, status: null });
  });

  it('are removed by the orphan sweep when their pool does not know them', async () => {
    const orphan = await infra.activities.createExecutionContainer({ name: `sf-exec-orphan-${randomUUID().slice(0, 8)}`, image: infra.config.EXECUTION_IMAGE, runtime: 'python', pool: 'integration-orphans' });
    expect(await infra.activities.removeOrphanExecutionContainers({ pool: 'integration-orphans', keep: [] })).toEqual([orphan]);
    await expect(infra.docker.getContainer(orphan).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });
});
