import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Cluster mode as its users and operators meet it, for the cluster tests and the cluster bench:
 * HTTP callers with keys of their own, and the processes `scripts/up.sh --cluster` started (found
 * by their pid files), which can be killed and started again exactly as they were.
 */
export interface ClusterSettings {
  /** The proxy in front of the api processes. */
  url: string;
  /** Each api process directly, in order (cluster-api-1, -2, …). */
  apiUrls: string[];
  adminKey: string;
  temporalAddress: string;
  /** Where the pid files and logs of the processes are (SF_RUN). */
  runDir: string;
}

export function clusterSettings(): ClusterSettings {
  const required = (name: string) => process.env[name] ?? (() => { throw new Error(`${name} is not set: run through scripts/test-cluster.sh or scripts/bench-cluster.sh`); })();
  return {
    url: required('CLUSTER_URL'),
    apiUrls: required('CLUSTER_API_URLS').split(',').filter(Boolean),
    adminKey: readFileSync(required('CLUSTER_ADMIN_KEY_FILE'), 'utf8').trim(),
    temporalAddress: required('CLUSTER_TEMPORAL_ADDRESS'),
    runDir: required('SF_RUN'),
  };
}

export class HttpError extends Error {
  constructor(readonly status: number, readonly body: string, what: string) {
    super(`${what}: ${status} ${body.slice(0, 300)}`);
  }
}

export interface Caller {
  key: string;
  call<T = Record<string, unknown>>(method: string, path: string, expected: number[], body?: unknown, base?: string): Promise<T>;
}

export function caller(base: string, key: string): Caller {
  return {
    key,
    async call<T>(method: string, path: string, expected: number[], body?: unknown, at = base): Promise<T> {
      const res = await fetch(`${at}${path}`, { method, headers: { Authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      if (!expected.includes(res.status)) throw new HttpError(res.status, text, `${method} ${at}${path}`);
      return (text ? JSON.parse(text) : {}) as T;
    },
  };
}

/** Users of their own, each with a key: per-user caps (executions in flight, sandboxes) bound one user, not the run. */
export async function makeUsers(base: string, adminKey: string, count: number, tag = randomUUID().slice(0, 8)): Promise<Caller[]> {
  const admin = caller(base, adminKey);
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const user = await admin.call('POST', '/api/v1/admin/users', [201], { name: `cluster-${tag}-${i}`, role: 'user' });
      const issued = await admin.call('POST', `/api/v1/admin/users/${String(user.id)}/keys`, [201], { label: 'cluster' });
      return caller(base, String(issued.key));
    }),
  );
}

export interface ClusterProcess {
  name: string;
  pid: number;
  kill(signal: NodeJS.Signals): void;
  /** Resolves once the process is gone. */
  exited(): Promise<void>;
  /** Starts it again as it was started (command, directory, environment), detached, with its pid file updated. */
  respawn(): ClusterProcess;
}

/** A process of cluster mode by its daemon name (`cluster-worker-2`, `cluster-api-1`). */
export function clusterProcess(runDir: string, name: string): ClusterProcess {
  const pidFile = join(runDir, `${name}.pid`);
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const env = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  );
  const cwd = execFileSync('readlink', [`/proc/${pid}/cwd`], { encoding: 'utf8' }).trim();
  return {
    name,
    pid,
    kill: (signal) => process.kill(pid, signal),
    async exited() {
      while (alive(pid)) await sleep(100);
    },
    respawn() {
      const log = openSync(join(runDir, `${name}.log`), 'a');
      const child = spawn(argv[0]!, argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', log, log] });
      child.unref();
      closeSync(log);
      writeFileSync(pidFile, `${child.pid}\n`);
      return clusterProcess(runDir, name);
    },
  };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resident memory of a process in MiB. */
export const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

/** Polls until `probe` resolves truthy, or fails with the last error after `timeoutMs`. */
export async function until<T>(probe: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(200);
  }
}

export const executePython = (user: Caller, code: string, base?: string) =>
  user.call<{ run: { stdout: string; code: number } }>('POST', '/api/v2/execute', [200], { language: 'python', version: '*', files: [{ content: code }] }, base);
