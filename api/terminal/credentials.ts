import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ApiError } from '../platform/problems';

/**
 * Host credentials at rest: AES-256-GCM under a key from the environment, stored as
 * iv (12 bytes) ‖ tag (16 bytes) ‖ ciphertext. The host id is bound in as associated data, so
 * a sealed credential copied onto another host's row does not open.
 */
export class CredentialSealer {
  private readonly key: Buffer | undefined;

  constructor(base64Key: string | undefined) {
    this.key = base64Key ? Buffer.from(base64Key, 'base64') : undefined;
  }

  seal(plaintext: string, hostId: string): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.requireKey(), iv);
    cipher.setAAD(Buffer.from(hostId, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]);
  }

  open(sealed: Buffer, hostId: string): string {
    const decipher = createDecipheriv('aes-256-gcm', this.requireKey(), sealed.subarray(0, 12));
    decipher.setAAD(Buffer.from(hostId, 'utf8'));
    decipher.setAuthTag(sealed.subarray(12, 28));
    return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]).toString('utf8');
  }

  private requireKey(): Buffer {
    if (!this.key) throw new ApiError('CredentialsKeyMissing', 'set TERMINAL_CREDENTIALS_KEY (base64 of 32 bytes) to register or use SSH hosts');
    return this.key;
  }
}
