import { parseHostKey, presentedHostKey } from '../../activities/shared/hostKeys';

// A real ed25519 public key line (from ssh-keygen), and its fingerprint as `ssh-keygen -lf` printed it.
const keyLine = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOm4OkYomFuf3qwjDw1ueSQaUrUdhojv84Pxfu9OSaC6 test@example';
const fingerprint = 'SHA256:3J2Hijpnl9SUXY13OvsjNoJ3pVWh4v3PW0HZzwuywDA';
const blob = Buffer.from(keyLine.split(' ')[1]!, 'base64');

describe('host keys', () => {
  it('fingerprints a presented key as OpenSSH does, and names its type', () => {
    expect(presentedHostKey(blob)).toEqual({ algorithm: 'ssh-ed25519', fingerprint });
  });

  it('takes a fingerprint, or a key line as authorized_keys, known_hosts or ssh-keyscan write it', () => {
    expect(parseHostKey(fingerprint)).toEqual({ fingerprint, algorithm: null });
    expect(parseHostKey(`  ${fingerprint}\n`)).toEqual({ fingerprint, algorithm: null });
    for (const line of [keyLine, keyLine.replace(' test@example', ''), `10.0.0.5 ${keyLine}`, `[lab1]:2222 ${keyLine}`]) {
      expect(parseHostKey(line)).toEqual({ fingerprint, algorithm: 'ssh-ed25519' });
    }
  });

  it('refuses what is neither, and a key line whose type and key disagree', () => {
    for (const text of ['', 'SHA256:short', `MD5:${fingerprint.slice(7)}`, 'ssh-ed25519', 'ssh-ed25519 !!!', keyLine.replace('ssh-ed25519', 'ssh-rsa')]) {
      expect(parseHostKey(text)).toBeUndefined();
    }
  });
});
