import type Docker from 'dockerode';
import type { HostConfig } from 'dockerode';

/**
 * Which OCI runtime runs the containers that hold user code (executions, chat sandboxes, the
 * self-check's probe). gVisor (`runsc`) puts a user-space kernel between that code and the
 * host's; runc only namespaces and cgroups. `auto` is gVisor wherever the engine has it.
 */
export const containerRuntimeSettings = ['auto', 'runsc', 'runc'] as const;
export type ContainerRuntimeSetting = (typeof containerRuntimeSettings)[number];
export type ContainerRuntimeName = 'runsc' | 'runc';

/**
 * The name the engine knows gVisor by. scripts/ensure-runsc.sh registers it with
 * `--network=none`: every container we run has no network, and runsc refuses to start one in
 * a network-less namespace without that flag.
 */
export const gvisorRuntime = 'runsc';

/**
 * gVisor for containers on a network (compute kernels of a cluster): registered beside it by the
 * same script with `--network=host`, i.e. socket calls pass to the kernel inside the container's
 * own network namespace. gVisor's own network stack would isolate more, but Debian's runsc
 * (2022-12-19) refuses it on kernels ≥ 6 (it mistakes every namespace for the root one).
 */
export const gvisorNetworkRuntime = 'runsc-hostinet';

/** The runtime, as `HostConfig.Runtime` wants it: resolved once per process, on first use. */
export type ContainerRuntime = () => Promise<ContainerRuntimeName>;

export class ContainerRuntimeUnavailableError extends Error {
  override name = 'ContainerRuntimeUnavailableError';
}

/**
 * `runc` needs no question to the engine. `auto` and `runsc` read the engine's runtimes once
 * (`docker info`), so every container of a process runs under the same one; a failed question
 * (engine away, runsc missing) is asked again next time rather than remembered. `auto` without
 * runsc warns once, because the fallback is weaker isolation that nobody chose.
 */
export function containerRuntimeResolver(docker: Pick<Docker, 'info'>, setting: ContainerRuntimeSetting, warn: (message: string) => void = () => undefined): ContainerRuntime {
  if (setting === 'runc') return () => Promise.resolve('runc');
  let resolved: Promise<ContainerRuntimeName> | undefined;
  const resolve = async (): Promise<ContainerRuntimeName> => {
    const { Runtimes } = (await docker.info()) as { Runtimes?: Record<string, unknown> };
    const available = Object.keys(Runtimes ?? {});
    if (available.includes(gvisorRuntime)) return gvisorRuntime;
    const missing = `the Docker engine has no ${gvisorRuntime} runtime (it has ${available.join(', ') || 'none listed'}); scripts/ensure-runsc.sh installs and registers it`;
    if (setting === gvisorRuntime) throw new ContainerRuntimeUnavailableError(`CONTAINER_RUNTIME=${gvisorRuntime}: ${missing}`);
    warn(`CONTAINER_RUNTIME=auto: ${missing}; containers run under runc, without gVisor`);
    return 'runc';
  };
  return () => {
    resolved ??= resolve().catch((err: unknown) => {
      resolved = undefined;
      throw err;
    });
    return resolved;
  };
}

/**
 * What gVisor itself holds in a container's cgroup (runsc 2022-12-19, ptrace platform, measured
 * on this machine kind): an idle container's sentry and gofer ≈ 22 MB and 54 host tasks; every
 * process the programs run adds ≈ 16 host tasks (the platform's stub threads) and ≈ 4 MB more
 * than under runc (a fork bomb of 64 Python processes peaked at 335 MB under runsc, 81 MB under
 * runc). Rounded up, so programs reaching their own limits never starve the kernel under them.
 * Host tasks are not bounded by the guest's process limit, though: while a fork bomb sits at
 * RLIMIT_NPROC, every refused fork still leaves host tasks behind, ≈ 300 a second (measured:
 * 4237 after 12 s of a 64-process bomb; all freed when the bomb's processes end). The runner
 * ends a bomb at its run timeout, so the limit allows ≈ 25 s of it for the default 64
 * processes (128 per process); past that the sentry cannot make threads and the container is
 * lost — as happened, at a lower limit, to 2-second bombs on a loaded CI machine.
 */
const gvisorBaseTasks = 128;
const gvisorTasksPerProcess = 128;
const gvisorBaseBytes = 32 * 1024 * 1024;
const gvisorBytesPerProcess = 4 * 1024 * 1024;

/**
 * The HostConfig of a container holding user code, for the runtime it runs under. runc: as
 * written. runsc: the cgroup limits hold gVisor's kernel too, so they get its share on top, and
 * the process limit moves inside the sandbox as RLIMIT_NPROC — gVisor counts a user's processes
 * in its own kernel, where the host's count (PidsLimit) would be mostly its stub threads and a
 * limit the programs reach would kill the sandbox instead of failing their fork().
 */
export function fitHostConfig(runtime: ContainerRuntimeName, hostConfig: HostConfig): HostConfig {
  if (runtime === 'runc') return { ...hostConfig, Runtime: runtime };
  const processes = hostConfig.PidsLimit !== undefined && hostConfig.PidsLimit > 0 ? hostConfig.PidsLimit : undefined;
  const overhead = gvisorBaseBytes + gvisorBytesPerProcess * (processes ?? 0);
  const withOverhead = (key: 'Memory' | 'MemorySwap') => (hostConfig[key] !== undefined && hostConfig[key] > 0 ? { [key]: hostConfig[key] + overhead } : {});
  return {
    ...hostConfig,
    Runtime: runtime,
    ...withOverhead('Memory'),
    ...withOverhead('MemorySwap'),
    ...(processes && {
      PidsLimit: gvisorBaseTasks + gvisorTasksPerProcess * processes,
      Ulimits: [...(hostConfig.Ulimits ?? []).filter((limit) => limit.Name !== 'nproc'), { Name: 'nproc', Soft: processes, Hard: processes }],
    }),
  };
}
