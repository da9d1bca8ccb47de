import { ContainerRuntimeUnavailableError, containerRuntimeResolver, fitHostConfig } from '../../activities/shared/containerRuntime';
import type Docker from 'dockerode';
import { loadConfig } from '../../platform/config';
import { createLogger } from '../../platform/logger';
import { containerRuntimeAtStart } from '../../workers/activityDeps';

/**
 * An engine lacking runsc, or not answering at all: faults to inject. (The real engine, which has
 * runsc, is asked in test/integration/containerRuntime.test.ts.)
 */
function engine(runtimes: string[] | Error) {
  const info = jest.fn(async () => {
    if (runtimes instanceof Error) throw runtimes;
    return { Runtimes: Object.fromEntries(runtimes.map((name) => [name, { path: name }])) };
  });
  return { info };
}

describe('CONTAINER_RUNTIME', () => {
  it('is auto unless set, and accepts runsc and runc only', () => {
    expect(loadConfig({}).CONTAINER_RUNTIME).toBe('auto');
    expect(loadConfig({ CONTAINER_RUNTIME: 'runsc' }).CONTAINER_RUNTIME).toBe('runsc');
    expect(loadConfig({ CONTAINER_RUNTIME: 'runc' }).CONTAINER_RUNTIME).toBe('runc');
    expect(() => loadConfig({ CONTAINER_RUNTIME: 'kata' })).toThrow(/CONTAINER_RUNTIME/);
    expect(() => loadConfig({ CONTAINER_RUNTIME: 'gvisor' })).toThrow(/CONTAINER_RUNTIME/);
  });
});

describe('containerRuntimeResolver', () => {
  it('auto falls back to runc on an engine without runsc, with one warning that says so', async () => {
    const warn = jest.fn();
    const resolve = containerRuntimeResolver(engine(['runc', 'io.containerd.runc.v2']), 'auto', warn);
    expect([await resolve(), await resolve()]).toEqual(['runc', 'runc']);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/no runsc runtime \(it has runc, io\.containerd\.runc\.v2\).*runc, without gVisor/);
  });

  it('refuses an explicit runsc the engine lacks, by name, and asks again next time', async () => {
    const docker = engine(['runc']);
    const resolve = containerRuntimeResolver(docker, 'runsc');
    await expect(resolve()).rejects.toThrow(ContainerRuntimeUnavailableError);
    await expect(resolve()).rejects.toThrow(/CONTAINER_RUNTIME=runsc: the Docker engine has no runsc runtime \(it has runc\).*ensure-runsc\.sh/);
    expect(docker.info).toHaveBeenCalledTimes(2);
  });

  it('does not remember an engine that did not answer', async () => {
    const docker = engine(new Error('connect ENOENT /var/run/docker.sock'));
    const resolve = containerRuntimeResolver(docker, 'auto');
    await expect(resolve()).rejects.toThrow(/ENOENT/);
    docker.info.mockResolvedValueOnce({ Runtimes: { runc: { path: 'runc' }, runsc: { path: 'runsc' } } });
    expect(await resolve()).toBe('runsc');
  });

  it('runc needs no question to the engine', async () => {
    const docker = engine(new Error('not asked'));
    expect(await containerRuntimeResolver(docker, 'runc')()).toBe('runc');
    expect(docker.info).not.toHaveBeenCalled();
  });
});

describe('containerRuntimeAtStart (worker and api start)', () => {
  const logLines = () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('info', 'test', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    return { log, lines };
  };

  it('refuses to start with an explicit runsc the engine lacks', async () => {
    const { log } = logLines();
    await expect(containerRuntimeAtStart({ CONTAINER_RUNTIME: 'runsc' }, engine(['runc']) as unknown as Docker, log)).rejects.toThrow(ContainerRuntimeUnavailableError);
  });

  it('starts with an engine that does not answer yet, and says the runtime is not known', async () => {
    const { log, lines } = logLines();
    const resolve = await containerRuntimeAtStart({ CONTAINER_RUNTIME: 'runsc' }, engine(new Error('connect ENOENT')) as unknown as Docker, log);
    expect(typeof resolve).toBe('function');
    expect(lines).toEqual([expect.objectContaining({ containerRuntime: 'unknown until Docker answers', setting: 'runsc' })]);
  });

  it('logs the fallback of auto as a warning, then the runtime in use', async () => {
    const { log, lines } = logLines();
    await containerRuntimeAtStart({ CONTAINER_RUNTIME: 'auto' }, engine(['runc']) as unknown as Docker, log);
    expect(lines.map((line) => [line.level, line.containerRuntime ?? line.msg])).toEqual([[40, expect.stringMatching(/without gVisor/)], [30, 'runc']]);
  });
});

describe('fitHostConfig', () => {
  const mib = 1024 * 1024;
  const limits = { NetworkMode: 'none', Memory: 256 * mib, MemorySwap: 256 * mib, PidsLimit: 64, Ulimits: [{ Name: 'fsize', Soft: 1024, Hard: 1024 }] };

  it('leaves runc containers as written, naming the runtime', () => {
    expect(fitHostConfig('runc', limits)).toEqual({ ...limits, Runtime: 'runc' });
  });

  it('under runsc bounds processes inside gVisor and gives its kernel room above the programs\' memory', () => {
    expect(fitHostConfig('runsc', limits)).toEqual({
      NetworkMode: 'none',
      Runtime: 'runsc',
      Memory: (256 + 32 + 4 * 64) * mib,
      MemorySwap: (256 + 32 + 4 * 64) * mib,
      PidsLimit: 128 + 128 * 64,
      Ulimits: [{ Name: 'fsize', Soft: 1024, Hard: 1024 }, { Name: 'nproc', Soft: 64, Hard: 64 }],
    });
  });

  it('under runsc keeps what is unlimited unlimited, and adds only the kernel\'s base without a process limit', () => {
    expect(fitHostConfig('runsc', { Memory: 64 * mib, MemorySwap: -1 })).toEqual({ Runtime: 'runsc', Memory: 96 * mib, MemorySwap: -1 });
  });
});
