import { randomUUID } from 'node:crypto';
import { release } from 'node:os';
import { createActivities } from '../../activities';
import { containerRuntimeResolver } from '../../activities/shared/containerRuntime';
import { createUserKey } from '../../api/platform/auth';
import { findRuntime, type ExecutionJob } from '../../domain/execution/execution';
import { sandboxContainerName } from '../../domain/sandbox/sandbox';
import { activityDepsFrom } from '../../workers/activityDeps';
import { openInfra, type Infra } from '../helpers/infra';

/**
 * Which kernel user code meets, per CONTAINER_RUNTIME, for every kind of container that holds it.
 * gVisor answers with its own kernel's release (4.4.0); runc shares the host's. The engine here
 * has runsc because the bring-up scripts register it (scripts/ensure-runsc.sh).
 */
const gvisorRelease = '4.4.0';
let infra: Infra;
let ownerId: string;
const containers: string[] = [];

beforeAll(async () => {
  infra = openInfra();
  ({ userId: ownerId } = await createUserKey(infra.pool, `runtime-${randomUUID().slice(0, 8)}`, 'user', 'test'));
});
afterAll(async () => {
  await Promise.all(containers.map((id) => infra.docker.getContainer(id).remove({ force: true }).catch(() => undefined)));
  await infra.close();
});

function pythonJob(code: string, timeoutMs: number): ExecutionJob {
  const python = findRuntime('python', '*')!;
  return {
    requestId: randomUUID(), language: python.language, version: python.version, stdin: '', args: [], outputLimit: 65536,
    files: [{ name: python.defaultFile, content: Buffer.from(code).toString('base64') }],
    run: { command: python.run, timeoutMs, memoryLimit: -1 },
  };
}

const activitiesUnder = (setting: 'auto' | 'runc') => createActivities(activityDepsFrom({ ...infra.config, CONTAINER_RUNTIME: setting }, { docker: infra.docker, pool: infra.pool }));

it('auto finds runsc on this engine, asking it once', async () => {
  const info = jest.fn(() => infra.docker.info());
  const resolve = containerRuntimeResolver({ info }, 'auto');
  expect([await resolve(), await resolve()]).toEqual(['runsc', 'runsc']);
  expect(info).toHaveBeenCalledTimes(1);
});

describe.each([
  { setting: 'auto' as const, runtime: 'runsc', kernel: gvisorRelease },
  { setting: 'runc' as const, runtime: 'runc', kernel: release() },
])('CONTAINER_RUNTIME=$setting', ({ setting, runtime, kernel }) => {
  const activities = () => activitiesUnder(setting);

  it(`runs execution containers under ${runtime}: a program sees kernel ${kernel}`, async () => {
    const acts = activities();
    const containerId = await acts.createExecutionContainer({ name: `sf-exec-rt-${randomUUID().slice(0, 8)}`, image: infra.config.EXECUTION_IMAGE, runtime: 'python', pool: `runtime-test-${setting}` });
    containers.push(containerId);
    expect((await infra.docker.getContainer(containerId).inspect()).HostConfig.Runtime).toBe(runtime);
    const run = async (code: string, timeoutMs = 3000) => (await acts.runInContainer({ containerId, job: pythonJob(code, timeoutMs), ownerId, historyOutputCap: 1000 })).result.run;
    expect((await run('import platform; print(platform.release())'))?.stdout).toBe(`${kernel}\n`);
    // The limits hold under either runtime: the bomb's forks fail, the container lives on.
    const bomb = await run('import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass', 1000);
    expect(['TO', 'SG']).toContain(bomb?.status);
    expect((await run('print("still serving")'))?.stdout).toBe('still serving\n');
  });

  it(`runs sandbox containers under ${runtime}: uname -r says ${kernel}`, async () => {
    const acts = activities();
    const sessionId = randomUUID();
    const now = Date.now();
    const { containerId } = await acts.createSandboxContainer({
      sessionId, chatId: randomUUID(), ownerId, containerName: sandboxContainerName(sessionId),
      createdAt: new Date(now).toISOString(), expiresAt: new Date(now + 60_000).toISOString(),
    });
    containers.push(containerId);
    expect((await infra.docker.getContainer(containerId).inspect()).HostConfig.Runtime).toBe(runtime);
    const uname = await acts.execInSandbox({ containerName: sandboxContainerName(sessionId), command: ['uname', '-r'], timeoutMs: 5000 });
    expect(uname).toMatchObject({ stdout: `${kernel}\n`, exitCode: 0 });
  });

  it(`names ${runtime} and its kernel in the self-check's container probe`, async () => {
    const { detail } = await activities().runProbeContainer({ probeId: `rt-${randomUUID()}` });
    expect(detail).toMatch(new RegExp(`ran python 3\\.\\d+\\.\\d+ under ${runtime} \\(kernel ${kernel.replace(/\./g, '\\.')}\\)$`));
  });
});
