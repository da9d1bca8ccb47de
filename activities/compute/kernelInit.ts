import { pack } from 'tar-stream';
import { kernelRunnerSource } from './kernelRunner';

/**
 * What a kernel's main process does, and the files it needs, in one place (issue 14 puts a
 * kernel runner here): start the cluster's sshd when the kernel has the cluster key, run the
 * bootstrap script once and record its exit code, start the kernel runner, then stay up. Everything lives under the
 * home of `work` in the container's own layer, which a restart keeps (vfolders are mounted
 * beside it, at /home/work/<name>).
 */

export const kernelUser = { uid: 1000, gid: 1000, home: '/home/work' } as const;
export const kernelStateDir = `${kernelUser.home}/.sessionflow`;
/** Written once the bootstrap script has run (its exit code, or 0 without a script); a restart finds it and runs nothing again. */
export const bootstrapStatusPath = `${kernelStateDir}/bootstrap.status`;
/** The port every kernel's sshd listens on inside the cluster network (unprivileged: sshd runs as `work`). */
export const kernelSshPort = 2200;
/** Every kernel's host key is the cluster's key, pinned under this one name, so `ssh sub1` checks it without a first-use prompt. */
const clusterHostKeyAlias = 'sessionflow-cluster';

/** The kernel runner (kernelRunner.ts): `serve` is started by init.sh; the node calls it as `python3 <path> call`. */
export const kernelRunnerPath = `${kernelStateDir}/kernel_runner.py`;

export const kernelCommand = ['/bin/sh', `${kernelStateDir}/init.sh`];

/** sshd as `work`, with the kernel's own configuration: started by init.sh, or by direct access (services.ts). */
export const sshdCommand = ['/usr/sbin/sshd', '-f', `${kernelStateDir}/sshd_config`, '-E', `${kernelStateDir}/sshd.log`];
/** Where a service's launcher, pid and log live (services.ts); init.sh starts the launchers again after a restart. */
export const kernelAppsDir = `${kernelStateDir}/apps`;

const initScript = `#!/bin/sh
# The main process of a sessionflow compute kernel (activities/compute/kernelInit.ts), under docker-init.
state=${kernelStateDir}
if [ -f "$state/sshd_config" ]; then
  rm -f "$state/sshd.pid"
  if ${sshdCommand.join(' ')}; then
    # sshd listens only once it has gone to the background, and writes its pid file then: the
    # kernel counts as up when this script goes on, so wait for it (10 s at most).
    tries=0
    while [ ! -s "$state/sshd.pid" ] && [ $tries -lt 100 ]; do sleep 0.1; tries=$((tries + 1)); done
  else
    echo "sessionflow: sshd did not start, see $state/sshd.log" >&2
  fi
fi
if [ ! -f "$state/bootstrap.status" ]; then
  code=0
  if [ -f "$state/bootstrap.sh" ]; then
    # Its output goes to the container's log; stdin is empty so it cannot wait for input.
    (cd "$HOME" && "$state/bootstrap.sh") </dev/null
    code=$?
  fi
  # Written aside then renamed: a reader never sees a half-written code.
  echo "$code" >"$state/bootstrap.status.partial" && mv "$state/bootstrap.status.partial" "$state/bootstrap.status"
fi
# The services started before a restart, again (each launcher goes to the background by itself).
for app in "$state"/apps/*.sh; do
  [ -f "$app" ] && /bin/sh "$app"
done
if [ -f "$state/kernel_runner.py" ] && [ "$SF_CLUSTER_ROLE" = main ]; then
  # Executions go to a session's main kernel, so only it runs the runner (a cluster's sub kernels
  # come up without its start-up); started again should it die (user code may end its process):
  # the namespace is lost, the kernel is not.
  (while :; do python3 "$state/kernel_runner.py" serve </dev/null; sleep 1; done) &
fi
exec sleep infinity
`;

function sshdConfig(): string {
  return [
    `Port ${kernelSshPort}`,
    `HostKey ${kernelUser.home}/.ssh/id_ed25519`,
    `PidFile ${kernelStateDir}/sshd.pid`,
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'AuthorizedKeysFile .ssh/authorized_keys',
    'PermitRootLogin no',
    'AllowUsers work',
    '',
  ].join('\n');
}

function sshClientConfig(hosts: string[]): string {
  return [
    `Host ${hosts.join(' ')}`,
    `  Port ${kernelSshPort}`,
    `  HostKeyAlias ${clusterHostKeyAlias}`,
    '  StrictHostKeyChecking yes',
    '  CheckHostIP no',
    '  LogLevel ERROR',
    '',
  ].join('\n');
}

export interface ClusterKey {
  privateKey: string;
  publicKey: string;
  hosts: string[];
}

export interface KernelFile {
  /** Relative to the home of `work`. */
  path: string;
  content: string;
  mode: number;
}

/** The files a kernel starts with: the init, the bootstrap script, and with a cluster key the SSH setup of `work`. */
export function kernelFiles({ bootstrapScript, cluster }: { bootstrapScript?: string; cluster?: ClusterKey }): KernelFile[] {
  const files: KernelFile[] = [
    { path: '.sessionflow/init.sh', content: initScript, mode: 0o755 },
    { path: '.sessionflow/kernel_runner.py', content: kernelRunnerSource, mode: 0o644 },
  ];
  if (bootstrapScript !== undefined) files.push({ path: '.sessionflow/bootstrap.sh', content: bootstrapScript, mode: 0o755 });
  if (cluster) files.push(...sshFiles(cluster));
  return files;
}

/** The SSH setup of `work`: sshd's configuration, the key pair (also the host key), authorized_keys, known_hosts, the client's config. */
export function sshFiles(cluster: ClusterKey): KernelFile[] {
  const publicKey = cluster.publicKey.trim();
  return [
    { path: '.sessionflow/sshd_config', content: sshdConfig(), mode: 0o600 },
    { path: '.ssh/id_ed25519', content: cluster.privateKey.endsWith('\n') ? cluster.privateKey : `${cluster.privateKey}\n`, mode: 0o600 },
    { path: '.ssh/id_ed25519.pub', content: `${publicKey}\n`, mode: 0o644 },
    { path: '.ssh/authorized_keys', content: `${publicKey}\n`, mode: 0o600 },
    { path: '.ssh/known_hosts', content: `${clusterHostKeyAlias} ${publicKey}\n`, mode: 0o644 },
    { path: '.ssh/config', content: sshClientConfig(cluster.hosts), mode: 0o600 },
  ];
}

/**
 * The files as a tar stream for Docker's putArchive at the home of `work`, all owned by `work`
 * (sshd refuses keys others could read), with a directory entry per vfolder: extracted onto the
 * volume's root, it makes a new volume writable by `work`.
 */
export function kernelFilesArchive(files: KernelFile[], vfolders: string[] = []): Promise<Buffer> {
  const archive = pack();
  const owner = { uid: kernelUser.uid, gid: kernelUser.gid };
  const dirs = new Set(files.map((file) => file.path.split('/').slice(0, -1).join('/')).filter(Boolean));
  for (const dir of dirs) archive.entry({ name: `${dir}/`, type: 'directory', mode: 0o700, ...owner });
  for (const folder of vfolders) archive.entry({ name: `${folder}/`, type: 'directory', mode: 0o755, ...owner });
  for (const file of files) archive.entry({ name: file.path, mode: file.mode, ...owner }, file.content);
  archive.finalize();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    archive.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    archive.on('end', () => resolve(Buffer.concat(chunks)));
    archive.on('error', reject);
  });
}
