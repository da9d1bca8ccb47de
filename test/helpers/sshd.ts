import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports';

/**
 * A real OpenSSH server on a loopback port, with its own host key and a user key, for tests
 * that drive hosts over SSH (terminals, boot servers). Logs in as the user running the tests.
 */
export interface SshServer {
  host: '127.0.0.1';
  port: number;
  username: string;
  /** OpenSSH-format private key (ed25519) authorised for `username`. */
  privateKey: string;
  /** The server's host public key line, for tests that pin it. */
  hostPublicKey: string;
  /** Its fingerprint as OpenSSH's own `ssh-keygen -lf` prints it (SHA256:…). */
  hostKeyFingerprint(): string;
  /** Scratch directory of this server (keys, config, log). */
  dir: string;
  /** sshd's log so far (LogLevel VERBOSE, captured from its stderr), for assertions and debugging. */
  log(): string;
  /** Successful logins so far (`Accepted publickey for …` and the like in the log). */
  logins(): number;
  /** TCP connections to this sshd now established, as `ss` sees them. */
  establishedConnections(): number;
  /** The host's key changes: sshd restarts on the same port with a new host key. */
  rotateHostKey(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSshServer(): Promise<SshServer> {
  const dir = mkdtempSync(join(tmpdir(), 'sf-sshd-'));
  const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'sessionflow-test', '-f', join(dir, file)]);
  keygen('host_key');
  keygen('user_key');
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'user_key.pub')), { mode: 0o600 });
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PrintMotd no',
      'Subsystem sftp internal-sftp',
      'MaxStartups 100:30:200',
      'MaxSessions 100',
      'LogLevel VERBOSE',
    ].join('\n') + '\n',
  );
  const chunks: Buffer[] = [];
  const run = async (): Promise<ChildProcess> => {
    // -D: stay in the foreground so the test owns the process; -e: log to stderr → file.
    const started = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    started.stderr?.on('data', (chunk: Buffer) => chunks.push(chunk));
    await waitForPort(port, started);
    return started;
  };
  const kill = async (process: ChildProcess) => {
    if (process.exitCode !== null) return;
    const exited = new Promise((resolve) => process.once('exit', resolve));
    process.kill('SIGTERM');
    await exited;
  };
  let child = await run();
  const log = () => Buffer.concat(chunks).toString('utf8');
  const server: SshServer = {
    host: '127.0.0.1',
    port,
    username: userInfo().username,
    privateKey: readFileSync(join(dir, 'user_key'), 'utf8'),
    hostPublicKey: readFileSync(join(dir, 'host_key.pub'), 'utf8').trim(),
    hostKeyFingerprint: () => execFileSync('ssh-keygen', ['-lf', join(dir, 'host_key.pub')], { encoding: 'utf8' }).split(' ')[1]!,
    dir,
    log,
    logins: () => log().split('\n').filter((line) => /^Accepted \S+ for /.test(line)).length,
    establishedConnections: () => execFileSync('ss', ['-Htn', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' }).split('\n').filter(Boolean).length,
    async rotateHostKey() {
      await kill(child);
      rmSync(join(dir, 'host_key'));
      rmSync(join(dir, 'host_key.pub'));
      keygen('host_key');
      server.hostPublicKey = readFileSync(join(dir, 'host_key.pub'), 'utf8').trim();
      child = await run();
    },
    async stop() {
      await kill(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode} before listening`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on 127.0.0.1:${port} within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
