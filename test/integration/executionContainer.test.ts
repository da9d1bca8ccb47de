import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createExecutionActivities } from '../../activities/execution';
import { findRuntime, runtimes, type ExecutionJob, type RuntimeSpec } from '../../domain/execution';
import { loadConfig } from '../../platform/config';
import { createDocker } from '../../platform/docker';
import { sandboxLimitsFrom } from '../../platform/executionSettings';

const config = loadConfig();
const docker = createDocker(config.DOCKER_SOCKET);
const activities = createExecutionActivities({ docker, instance: config.SESSIONFLOW_INSTANCE, sandbox: sandboxLimitsFrom(config) });
let containerId: string;

beforeAll(async () => {
  containerId = await activities.createExecutionContainer({ name: `sf-exec-test-${randomUUID().slice(0, 8)}`, image: config.EXECUTION_IMAGE, runtime: 'python' });
});
afterAll(async () => {
  await activities.removeExecutionContainer({ containerId });
});

function job(runtime: RuntimeSpec, code: string, extra: Partial<ExecutionJob> = {}): ExecutionJob {
  return {
    requestId: randomUUID(), language: runtime.language, version: runtime.version,
    files: [{ name: runtime.defaultFile, content: Buffer.from(code).toString('base64') }],
    stdin: '', args: [], outputLimit: 65536,
    compile: runtime.compile && { command: runtime.compile, timeoutMs: 10_000, memoryLimit: -1 },
    run: { command: runtime.run, timeoutMs: 3000, memoryLimit: -1 },
    ...extra,
  };
}
const python = findRuntime('python', '*')!;

describe('execution containers', () => {
  it('runs every runtime of the catalogue at the version it reports', async () => {
    const versionOf: Record<string, string[]> = { python: ['python3', '--version'], javascript: ['node', '--version'], bash: ['bash', '--version'], c: ['gcc', '--version'] };
    for (const runtime of runtimes) {
      const printed = execFileSync('docker', ['exec', containerId, ...versionOf[runtime.language]!], { encoding: 'utf8' });
      expect(printed).toContain(runtime.version);
    }
  });

  it('runs a program as nobody with stdin and reports Piston fields', async () => {
    const result = await activities.runInContainer({ containerId, job: job(python, 'import os\nname = input()\nprint(f"Hello, {name}", os.getuid())', { stdin: 'Alice' }) });
    expect(result.run).toMatchObject({ stdout: 'Hello, Alice 65534\n', stderr: '', code: 0, signal: null, status: null });
  });

  it('kills a program past its run timeout with SIGKILL and says TO', async () => {
    const result = await activities.runInContainer({ containerId, job: job(python, 'import time\ntime.sleep(60)', { run: { command: python.run, timeoutMs: 1000, memoryLimit: -1 } }) });
    expect(result.run).toMatchObject({ status: 'TO', signal: 'SIGKILL', code: null });
  });

  it('caps endless output and says OL', async () => {
    const result = await activities.runInContainer({ containerId, job: job(python, 'while True:\n    print("x" * 1000)', { outputLimit: 4096 }) });
    expect(result.run?.status).toBe('OL');
    expect(result.run?.stdout.length).toBe(4096);
  });
});
