import { Context, log } from '@temporalio/activity';
import type Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { directAccessServiceName, fillPlaceholders, type AppDefinition, type ServiceRecord, type StartServiceRequest, withoutTokens } from '../../domain/compute/services';
import { domainFailure } from '../../domain/shared/errors';
import type { Sealer } from '../../platform/sealer';
import { statusOf } from '../shared/docker';
import type { ClusterKeyPair } from './clusterKeys';
import { kernelAppsDir, kernelFilesArchive, kernelSshPort, kernelStateDir, kernelUser, sshdCommand, sshFiles, type KernelFile } from './kernelInit';
import { execInKernel, freeHostPort, HostPortTaken, KernelGone, relaySource, serviceKey, type ServiceProxy } from './serviceProxy';
import { createServiceStore, type ServiceRow, type ServiceStore } from './serviceStore';
import { createSecretStore } from './secretStore';

/** How long a started app has to answer on its port before the start fails (seed: a web IDE takes seconds). */
const startTimeoutMs = 60_000;
/** Container ports looked at, from the one asked for upwards, before giving up. */
const portCandidates = 32;
/** What a failed start shows of the app's log. */
const logTailBytes = 4096;

export interface ServiceActivityDeps {
  docker: Docker;
  pool: Pool;
  /** Seals the services' tokens and opens the session's key pair (COMPUTE_SECRETS_KEY). */
  sealer: Sealer;
  /** This node's listeners (owned by its worker process). */
  proxy: ServiceProxy;
}

/** Where a service runs: the session's main kernel on this node. */
export interface KernelAddress {
  sessionId: string;
  kernelId: string;
  containerId: string;
  /** This node's name, as the session's placement says: the rows of its listeners carry it. */
  node: string;
}

const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;
const appFile = (name: string, suffix: 'sh' | 'pid' | 'log') => `${kernelAppsDir}/${name}.${suffix}`;

/**
 * The launcher of one app, kept in the kernel so init.sh starts it again after a restart. It
 * does nothing while the app runs (the app holds the lock, through flock), else starts it in the
 * background in /home/work, as `work`, with its token and port in the environment and its
 * output in apps/<name>.log.
 */
function launcherScript(name: string, argv: string[], env: Record<string, string>): string {
  const lock = quote(`${kernelAppsDir}/${name}.lock`);
  return [
    '#!/bin/sh',
    `# The service ${name} of this kernel (sessionflow, activities/compute/services.ts).`,
    `flock -n ${lock} true || exit 0`,
    `rm -f ${quote(appFile(name, 'pid'))}`,
    `cd ${kernelUser.home} || exit 1`,
    `export ${Object.entries(env).map(([key, value]) => `${key}=${quote(value)}`).join(' ')}`,
    `flock -n ${lock} /bin/sh -c 'echo $$ >"$0"; exec "$@"' ${quote(appFile(name, 'pid'))} ${argv.map(quote).join(' ')} >${quote(appFile(name, 'log'))} 2>&1 </dev/null &`,
    '',
  ].join('\n');
}

/**
 * Ends the app (TERM, then KILL after 5 s) and forgets its launcher, so a restart does not start
 * it again. Done when its lock is free: the app and the flock holding it have both ended, so
 * the app may be started again at once.
 */
function stopScript(name: string): string {
  const pid = quote(appFile(name, 'pid'));
  const lock = quote(`${kernelAppsDir}/${name}.lock`);
  return [
    `rm -f ${quote(appFile(name, 'sh'))}`,
    `p=$(cat ${pid} 2>/dev/null) || exit 0`,
    `rm -f ${pid}`,
    'kill "$p" 2>/dev/null || exit 0',
    `i=0; until flock -n ${lock} true || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done`,
    `flock -n ${lock} true || kill -9 "$p" 2>/dev/null`,
    'exit 0',
  ].join('\n');
}

/** "running", "exited" (it started and is gone) or "starting" (no pid yet). */
function appStateScript(name: string): string {
  const pid = quote(appFile(name, 'pid'));
  return `if [ ! -f ${pid} ]; then echo starting; elif kill -0 "$(cat ${pid})" 2>/dev/null; then echo running; else echo exited; fi`;
}

/**
 * Services of a session's main kernel, run by the kernel's node: start an app of the image,
 * stop it, and the sshd of direct access. Each is idempotent: the row in compute_services is
 * the service, found again by (session, name); the listener is opened again or kept; an app
 * that already answers is not started twice.
 */
export function createServiceActivities({ docker, pool, sealer, proxy }: ServiceActivityDeps) {
  const store = createServiceStore(pool, sealer);
  const secrets = createSecretStore(pool, sealer);

  /**
   * The service's row, made when missing: the container port asked for unless another service
   * of the kernel holds it or something in the kernel listens on it (then the next free one up),
   * and the same number on the node unless taken there (then any free one). `fixedPort`: the
   * container port is not chosen (sshd listens where it listens).
   */
  async function ensureRow(at: KernelAddress, service: { name: string; protocol: AppDefinition['protocol']; urlPath: string; port: number; fixedPort?: boolean }): Promise<{ row: ServiceRow; made: boolean }> {
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const found = await store.service(at.sessionId, service.name);
      if (found) return { row: found, made: false };
      const inUse = await store.portsInUse(at.kernelId, at.node);
      const containerPort = service.fixedPort ? service.port : await freeContainerPort(at.containerId, service.port, inUse.container);
      const hostPort = await freeHostPort(containerPort, inUse.host);
      const outcome = await store.insert({
        session_id: at.sessionId, name: service.name, kernel_id: at.kernelId, node: at.node, protocol: service.protocol, url_path: service.urlPath,
        requested_port: service.port, container_port: containerPort, host_port: hostPort, token: randomBytes(24).toString('hex'),
      });
      if (outcome === 'inserted') return { row: (await store.service(at.sessionId, service.name))!, made: true };
      // Another start made it, or took one of these ports meanwhile: look again.
    }
    throw domainFailure('ServiceStartFailed', `no free ports could be reserved for service ${service.name}`, { service: service.name });
  }

  async function freeContainerPort(containerId: string, wanted: number, taken: Set<number>): Promise<number> {
    // 2200 stays sshd's, whether or not it runs yet (direct access starts it on demand).
    const candidates = Array.from({ length: portCandidates }, (_, i) => wanted + i).filter((port) => port <= 65535 && !taken.has(port) && port !== kernelSshPort);
    const listening = new Set(await inKernel(() => proxy.listening(containerId, candidates)));
    const port = candidates.find((candidate) => !listening.has(candidate));
    if (port === undefined) throw domainFailure('ServiceStartFailed', `no free port in the kernel from ${wanted} to ${wanted + portCandidates - 1}`, { port: wanted });
    return port;
  }

  /** The row's listener, on its port; a port taken meanwhile on the node (by anything) moves the service to a free one. */
  async function openListener(row: ServiceRow, containerId: string): Promise<ServiceRow> {
    const opened = await openServiceListener(store, proxy, row, containerId);
    if (opened.host_port !== row.host_port) log.warn('service moved to another host port', { sessionId: row.session_id, service: row.name, from: row.host_port, to: opened.host_port });
    return opened;
  }

  /** Looks (heartbeating) until the port answers in the kernel; an app that exits, or the timeout, fails the start with its log's tail. */
  async function awaitAnswer(containerId: string, row: ServiceRow, app: string | undefined): Promise<void> {
    const activity = Context.current();
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      activity.heartbeat();
      const { listening, state } = await lookAt(containerId, row.container_port, app);
      if (listening) return;
      if (state === 'exited' || Date.now() >= deadline) {
        const why = state === 'exited' ? 'exited before it answered' : `did not answer within ${startTimeoutMs / 1000} s`;
        const logFile = app ? appFile(app, 'log') : `${kernelStateDir}/sshd.log`;
        // The tail goes into the workflow's history and the answer: a token a server printed (jupyter's URLs) is not copied there.
        const tail = withoutTokens((await inKernel(() => execInKernel(docker, containerId, ['tail', '-c', String(logTailBytes), logFile]))).stdout);
        await removeService(containerId, row.session_id, row.name);
        throw domainFailure('ServiceStartFailed', `service ${row.name} ${why} on port ${row.container_port}`, { service: row.name, port: row.container_port, log: tail });
      }
      // Cancellation-aware: a destroy does not wait for the start.
      await activity.sleep(100);
    }
  }

  /** Whether the port answers in the kernel and how the app fares, in one exec (each costs 0.1-0.2 s under gVisor). */
  async function lookAt(containerId: string, port: number, app: string | undefined): Promise<{ listening: boolean; state: string }> {
    const script = `python3 -I -S -c "$1" probe 127.0.0.1 ${port}${app ? `; ${appStateScript(app)}` : ''}`;
    const { stdout } = await inKernel(() => execInKernel(docker, containerId, ['/bin/sh', '-c', script, 'sh', relaySource]));
    const [ports = '', state = 'starting'] = stdout.split('\n');
    return { listening: ports.trim().split(/\s+/).includes(String(port)), state: state.trim() || 'starting' };
  }

  async function removeService(containerId: string, sessionId: string, name: string): Promise<boolean> {
    await proxy.close(serviceKey(sessionId, name));
    if (name !== directAccessServiceName) await inKernel(() => execInKernel(docker, containerId, ['/bin/sh', '-c', stopScript(name)]));
    return store.remove(sessionId, name);
  }

  /**
   * Files into the running kernel's home, as `work`, through tar in the kernel (Docker's archive
   * API writes beside a gVisor sandbox, which does not see files changed behind its back), then
   * `andThen` in the same exec: each exec costs 0.1-0.2 s under gVisor.
   */
  async function writeKernelFiles(containerId: string, files: KernelFile[], andThen?: string[]): Promise<void> {
    const archive = await kernelFilesArchive(files);
    const script = `tar -x -p -C ${kernelUser.home} -f -${andThen ? ' && exec "$@"' : ''}`;
    const { exitCode, stdout } = await inKernel(() => execInKernel(docker, containerId, ['/bin/sh', '-c', script, 'sh', ...(andThen ?? [])], { stdin: archive }));
    if (exitCode !== 0) throw domainFailure('ServiceStartFailed', `writing ${files.map((f) => f.path).join(', ')} in the kernel${andThen ? ` and ${andThen.join(' ')}` : ''} exited with ${exitCode}: ${stdout.slice(0, 500)}`);
  }

  async function answers(containerId: string, port: number): Promise<boolean> {
    return (await inKernel(() => proxy.listening(containerId, [port]))).length > 0;
  }

  return {
    /**
     * Starts an app of the session's image in its main kernel (or finds it running) and listens
     * for it on this node: the answer names both ports and the one asked for. An app that does
     * not answer on its port within 60 s, or exits, is ServiceStartFailed with its log's tail,
     * and leaves nothing behind.
     */
    async startKernelService(request: KernelAddress & StartServiceRequest): Promise<ServiceRecord> {
      const { name, app } = request;
      const ensured = await ensureRow(request, { name, protocol: app.protocol, urlPath: app.url_path, port: request.port });
      const row = await openListener(ensured.row, request.containerId);
      // A service just made has nothing on its port yet (its choice looked); one found may run already.
      if (ensured.made || !(await answers(request.containerId, row.container_port))) {
        const values = { port: row.container_port, token: store.openToken(row) };
        const launcher = launcherScript(name, app.command.map((word) => fillPlaceholders(word, values)), { SF_APP_PORT: String(values.port), SF_APP_TOKEN: values.token });
        await writeKernelFiles(request.containerId, [{ path: `.sessionflow/apps/${name}.sh`, content: launcher, mode: 0o700 }], ['/bin/sh', appFile(name, 'sh')]);
        log.info('service launched', { sessionId: request.sessionId, service: name, containerPort: row.container_port, hostPort: row.host_port });
        await awaitAnswer(request.containerId, row, name);
      }
      return recordOf(row);
    },

    /** Stops the service's app (not sshd, which a cluster's kernels use) and closes its listener; a service already gone is done. */
    async stopKernelService({ sessionId, containerId, name }: { sessionId: string; containerId: string; name: string }): Promise<{ name: string; stopped: boolean }> {
      return { name, stopped: await removeService(containerId, sessionId, name) };
    },

    /**
     * Direct access: the kernel's sshd on port 2200, with the session's key pair (the cluster's
     * for a cluster, whose sshd runs already), reached as the service `sshd`. A kernel without
     * SSH files gets them (the key pair is also the host key), and its sshd is started.
     */
    async openDirectAccess(request: KernelAddress & { keyId: string; hostname: string }): Promise<ServiceRecord> {
      if (!(await answers(request.containerId, kernelSshPort))) {
        const configured = await inKernel(() => execInKernel(docker, request.containerId, ['test', '-f', `${kernelStateDir}/sshd_config`]));
        if (configured.exitCode !== 0) {
          const plaintext = await secrets.open(request.keyId);
          if (plaintext === undefined) throw domainFailure('Internal', `the session's SSH key pair (${request.keyId}) is gone`);
          const pair = JSON.parse(plaintext) as ClusterKeyPair;
          await writeKernelFiles(request.containerId, sshFiles({ ...pair, hosts: [request.hostname] }));
        }
        // sshd goes to the background itself once it listens; its exit code says whether it could.
        const started = await inKernel(() => execInKernel(docker, request.containerId, sshdCommand));
        if (started.exitCode !== 0) {
          const tail = (await inKernel(() => execInKernel(docker, request.containerId, ['tail', '-c', String(logTailBytes), `${kernelStateDir}/sshd.log`]))).stdout;
          throw domainFailure('ServiceStartFailed', `sshd did not start (exit ${started.exitCode})`, { service: directAccessServiceName, log: `${started.stdout}${tail}` });
        }
      }
      const row = await openListener((await ensureRow(request, { name: directAccessServiceName, protocol: 'tcp', urlPath: '', port: kernelSshPort, fixedPort: true })).row, request.containerId);
      await awaitAnswer(request.containerId, row, undefined);
      return recordOf(row);
    },
  };
}

export type ServiceActivities = ReturnType<typeof createServiceActivities>;

function recordOf(row: ServiceRow): ServiceRecord {
  return { name: row.name, kernelId: row.kernel_id, node: row.node, protocol: row.protocol, requestedPort: row.requested_port, containerPort: row.container_port, hostPort: row.host_port };
}

/** A kernel gone or stopped is the session's problem, named: retrying cannot bring it back. */
async function inKernel<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof KernelGone) throw domainFailure('KernelFailed', err.message);
    if (statusOf(err) === 404 || statusOf(err) === 409) throw domainFailure('KernelFailed', `the kernel's container is gone or stopped: ${(err as Error).message}`);
    throw err;
  }
}

/**
 * A session's services on this node at its end (the kernels' removal): listeners closed, rows
 * gone. Best effort for the rows: the node's sweep forgets those of ended sessions anyway.
 */
export async function closeSessionServices({ pool, sealer, proxy }: Omit<ServiceActivityDeps, 'docker'>, sessionId: string): Promise<void> {
  await proxy.closeSession(sessionId);
  await createServiceStore(pool, sealer).removeSession(sessionId).catch((err: unknown) => {
    log.warn('the services of an ended session are left to the sweep', { sessionId, error: String(err) });
  });
}

/**
 * A service's listener on its row's host port. The port taken meanwhile on the node (by
 * anything: the node's worker was away) moves the service to a free one, and its row says so.
 */
export async function openServiceListener(store: ServiceStore, proxy: ServiceProxy, row: ServiceRow, containerId: string): Promise<ServiceRow> {
  const target = { key: serviceKey(row.session_id, row.name), containerId, containerPort: row.container_port };
  try {
    await proxy.open({ ...target, hostPort: row.host_port });
    return row;
  } catch (err) {
    if (!(err instanceof HostPortTaken)) throw err;
  }
  const hostPort = await proxy.open({ ...target, hostPort: 0 });
  await store.moveHostPort(row.session_id, row.name, hostPort);
  return { ...row, host_port: hostPort };
}
