import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HostKeyMismatchError, HostKeyUnverifiedError, parseHostKey, readHostKey, type HostKeyTrust, type PresentedHostKey,
} from '../../activities/shared/hostKeys';
import { SshPool, type SshTarget } from '../../activities/shared/ssh';
import { startSshServer, type SshServer } from '../helpers/sshd';

let sshd: SshServer;
beforeAll(async () => {
  sshd = await startSshServer();
});
afterAll(async () => {
  await sshd?.stop();
});

const target = (hostKey: HostKeyTrust): SshTarget => ({ host: sshd.host, port: sshd.port, username: sshd.username, privateKey: sshd.privateKey, hostKey });

async function withPool<T>(run: (pool: SshPool) => Promise<T>): Promise<T> {
  const pool = new SshPool({ connectTimeoutMs: 5000 });
  try {
    return await run(pool);
  } finally {
    await pool.close();
  }
}

/** An RSA key line of another host: a pin of a type this sshd (ed25519 only) does not have. */
function otherRsaKeyLine(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sf-rsa-'));
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', join(dir, 'key')]);
    return readFileSync(join(dir, 'key.pub'), 'utf8').trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('SSH host keys against a real sshd', () => {
  it('reads the key a host presents, as ssh-keygen prints its fingerprint, without logging in', async () => {
    const before = sshd.logins();
    expect(await readHostKey(sshd.host, sshd.port)).toEqual({ algorithm: 'ssh-ed25519', fingerprint: sshd.hostKeyFingerprint() });
    expect(parseHostKey(sshd.hostPublicKey)).toEqual({ algorithm: 'ssh-ed25519', fingerprint: sshd.hostKeyFingerprint() });
    expect(sshd.logins()).toBe(before);
  });

  it('runs commands on a host whose key is the pinned one, pinned as a fingerprint or as a key line', async () => {
    await withPool(async (pool) => {
      expect((await pool.exec(target({ pinned: { fingerprint: sshd.hostKeyFingerprint(), algorithm: null } }), 'echo by-fingerprint')).stdout).toBe('by-fingerprint\n');
    });
    await withPool(async (pool) => {
      expect((await pool.exec(target({ pinned: parseHostKey(sshd.hostPublicKey)! }), 'echo by-key-line')).stdout).toBe('by-key-line\n');
    });
  });

  it('pins the key an unpinned host presents first, once, and trusts it', async () => {
    const recorded: PresentedHostKey[] = [];
    const trust: HostKeyTrust = { pinned: null, pinOnFirstUse: async (presented) => (recorded.push(presented), presented) };
    await withPool(async (pool) => {
      expect((await pool.exec(target(trust), 'echo first-use')).stdout).toBe('first-use\n');
    });
    expect(recorded).toEqual([{ algorithm: 'ssh-ed25519', fingerprint: sshd.hostKeyFingerprint() }]);
  });

  it('refuses an unpinned host when first use may not pin it, before logging in', async () => {
    const before = sshd.logins();
    await withPool(async (pool) => {
      const refused = await pool.exec(target({ pinned: null }), 'echo never').catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(HostKeyUnverifiedError);
      expect((refused as HostKeyUnverifiedError).presented?.fingerprint).toBe(sshd.hostKeyFingerprint());
    });
    expect(sshd.logins()).toBe(before);
  });

  it('refuses a host without a key of the pinned type, naming the key it has instead', async () => {
    const before = sshd.logins();
    const pinned = parseHostKey(otherRsaKeyLine())!;
    expect(pinned.algorithm).toBe('ssh-rsa');
    await withPool(async (pool) => {
      const refused = await pool.exec(target({ pinned }), 'echo never').catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(HostKeyMismatchError);
      expect((refused as HostKeyMismatchError).presented).toEqual({ algorithm: 'ssh-ed25519', fingerprint: sshd.hostKeyFingerprint() });
    });
    expect(sshd.logins()).toBe(before);
  });

  it('checks every target against the key of the pooled connection it would share', async () => {
    const right = parseHostKey(sshd.hostPublicKey)!;
    const wrong = parseHostKey(otherRsaKeyLine())!;
    const recorded: PresentedHostKey[] = [];
    await withPool(async (pool) => {
      expect((await pool.exec(target({ pinned: right }), 'echo pooled')).stdout).toBe('pooled\n');
      const before = sshd.logins();
      // Same host, user and key, so the same pooled connection: its own pin still decides.
      await expect(pool.exec(target({ pinned: wrong }), 'echo never')).rejects.toBeInstanceOf(HostKeyMismatchError);
      await expect(pool.exec(target({ pinned: null }), 'echo never')).rejects.toBeInstanceOf(HostKeyUnverifiedError);
      const firstUse: HostKeyTrust = { pinned: null, pinOnFirstUse: async (presented) => (recorded.push(presented), presented) };
      expect((await pool.exec(target(firstUse), 'echo shared')).stdout).toBe('shared\n');
      expect(sshd.logins()).toBe(before);
    });
    expect(recorded).toEqual([{ algorithm: 'ssh-ed25519', fingerprint: sshd.hostKeyFingerprint() }]);
  });

  // Last: it changes the server's key.
  it('refuses a host whose key changed, naming both keys, before logging in', async () => {
    const pinned = parseHostKey(sshd.hostPublicKey)!;
    await withPool(async (pool) => {
      expect((await pool.exec(target({ pinned }), 'echo before')).stdout).toBe('before\n');
    });
    await sshd.rotateHostKey();
    const before = sshd.logins();
    await withPool(async (pool) => {
      const refused = await pool.exec(target({ pinned }), 'echo never').catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(HostKeyMismatchError);
      expect(refused).toMatchObject({ code: 'HostKeyMismatch', pinned, presented: { algorithm: 'ssh-ed25519', fingerprint: sshd.hostKeyFingerprint() } });
      expect(pool.size).toBe(0);
    });
    expect(sshd.logins()).toBe(before);
  });
});
