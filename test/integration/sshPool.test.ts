import { parseHostKey } from '../../activities/shared/hostKeys';
import { SshPool, SshTimeoutError, type SshTarget } from '../../activities/shared/ssh';
import { startSshServer, type SshServer } from '../helpers/sshd';

let sshd: SshServer;
let target: SshTarget;
beforeAll(async () => {
  sshd = await startSshServer();
  target = { host: sshd.host, port: sshd.port, username: sshd.username, privateKey: sshd.privateKey, hostKey: { pinned: parseHostKey(sshd.hostPublicKey)! } };
});
afterAll(async () => {
  await sshd?.stop();
});

const logins = () => sshd.log().split('\n').filter((line) => line.includes('Accepted publickey')).length;

describe('SshPool against a real sshd', () => {
  it('returns the exit code, stdout and stderr of a command, and feeds stdin', async () => {
    const pool = new SshPool();
    try {
      expect(await pool.exec(target, 'echo out; echo err >&2; exit 3')).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
      expect((await pool.exec(target, 'tr a-z A-Z', { stdin: 'boot me\n' })).stdout).toBe('BOOT ME\n');
    } finally {
      await pool.close();
    }
  });

  it('reuses one connection per boot server across many commands, also concurrent ones beyond the channel cap', async () => {
    const pool = new SshPool({ maxChannels: 4 });
    const before = logins();
    try {
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => pool.exec(target, `echo ${i}`)));
      expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
      await pool.exec(target, 'true');
      expect(pool.size).toBe(1);
      expect(logins() - before).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('gives up on a command that outlives its timeout, and the connection stays usable', async () => {
    const pool = new SshPool();
    try {
      await expect(pool.exec(target, 'sleep 5', { timeoutMs: 300 })).rejects.toBeInstanceOf(SshTimeoutError);
      expect((await pool.exec(target, 'echo still here')).stdout).toBe('still here\n');
    } finally {
      await pool.close();
    }
  });

  it('dials again after a failed handshake instead of keeping the failure', async () => {
    const pool = new SshPool({ connectTimeoutMs: 2000 });
    try {
      await expect(pool.exec({ ...target, username: 'no-such-user-here' }, 'true')).rejects.toThrow();
      expect(pool.size).toBe(0);
    } finally {
      await pool.close();
    }
  });
});
