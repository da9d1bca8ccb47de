import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Secrets at rest (host credentials, a compute session's secret_env, a cluster's SSH key):
 * AES-256-GCM under a key from the environment, stored as iv (12 bytes) ‖ tag (16 bytes) ‖
 * ciphertext. The owning row's id is bound in as associated data, so a sealed value copied onto
 * another row does not open. Without a key, seal and open fail with the caller's own error.
 */
export class Sealer {
  private readonly key: Buffer | undefined;

  constructor(base64Key: string | undefined, private readonly keyMissing: () => Error) {
    this.key = base64Key ? Buffer.from(base64Key, 'base64') : undefined;
  }

  get hasKey(): boolean {
    return this.key !== undefined;
  }

  seal(plaintext: string, boundTo: string): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.requireKey(), iv);
    cipher.setAAD(Buffer.from(boundTo, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]);
  }

  open(sealed: Buffer, boundTo: string): string {
    const decipher = createDecipheriv('aes-256-gcm', this.requireKey(), sealed.subarray(0, 12));
    decipher.setAAD(Buffer.from(boundTo, 'utf8'));
    decipher.setAuthTag(sealed.subarray(12, 28));
    return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]).toString('utf8');
  }

  private requireKey(): Buffer {
    if (!this.key) throw this.keyMissing();
    return this.key;
  }
}
