import { createHash } from 'node:crypto';
import { Client, type ConnectConfig } from 'ssh2';

/**
 * SSH host keys, pinned. A host is known by OpenSSH's SHA256 fingerprint of its public key
 * (what `ssh-keygen -lf` prints), and by the key's type when we know it. ssh2 calls the
 * verifier during key exchange, before the client sends any credential, so a host that fails
 * the check never sees a password, a key signature or a command.
 */

export interface HostKeyPin {
  fingerprint: string;
  /** The key type (`ssh-ed25519`, `ssh-rsa`, …); null when the admin gave only a fingerprint. */
  algorithm: string | null;
}

/** The key a host presented in one handshake. */
export interface PresentedHostKey {
  fingerprint: string;
  algorithm: string;
}

export type HostKeySource = 'admin' | 'first_use';

/** How one connection decides whether to trust the host at the other end. */
export interface HostKeyTrust {
  pinned: HostKeyPin | null;
  /**
   * For a host without a pin: records the presented key and answers the pin now in place (ours,
   * or the one a concurrent first use recorded). Absent: an unpinned host is refused.
   */
  pinOnFirstUse?: (presented: PresentedHostKey) => Promise<HostKeyPin>;
}

export const fingerprintPattern = /^SHA256:[A-Za-z0-9+/]{43}$/;
const keyTypes = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa', 'ssh-dss'];
// A public key line as authorized_keys, known_hosts or ssh-keyscan write it: [host] type base64 [comment].
const keyLinePattern = new RegExp(`^(?:\\S+\\s+)?(${keyTypes.join('|')})\\s+([A-Za-z0-9+/]+={0,3})(?:\\s.*)?$`);

export function presentedHostKey(blob: Buffer): PresentedHostKey {
  return { algorithm: keyBlobType(blob) ?? 'unknown', fingerprint: fingerprintOf(blob) };
}

/** `SHA256:` and the unpadded base64 of the key blob's SHA-256, exactly as OpenSSH prints it. */
function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

// An SSH key blob starts with its type as a length-prefixed string.
function keyBlobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  return length > 0 && length <= 64 && blob.length >= 4 + length ? blob.subarray(4, 4 + length).toString('latin1') : undefined;
}

/**
 * What an admin may give: a fingerprint (`SHA256:…`), or a public key line, whose type then
 * narrows negotiation to it. Undefined when it is neither.
 */
export function parseHostKey(text: string): HostKeyPin | undefined {
  const value = text.trim();
  if (fingerprintPattern.test(value)) return { fingerprint: value, algorithm: null };
  const match = keyLinePattern.exec(value);
  if (!match) return undefined;
  const blob = Buffer.from(match[2]!, 'base64');
  // The type inside the blob must be the one the line names, or the line was tampered with.
  return keyBlobType(blob) === match[1] ? { fingerprint: fingerprintOf(blob), algorithm: match[1]! } : undefined;
}

export class HostKeyMismatchError extends Error {
  override name = 'HostKeyMismatchError';
  readonly code = 'HostKeyMismatch';
  constructor(readonly endpoint: string, readonly pinned: HostKeyPin, readonly presented: PresentedHostKey) {
    super(`${endpoint} presented the ${presented.algorithm} host key ${presented.fingerprint}, not the pinned ${pinned.fingerprint}; nothing was sent to it`);
  }
}

export class HostKeyUnverifiedError extends Error {
  override name = 'HostKeyUnverifiedError';
  readonly code = 'HostKeyUnverified';
  constructor(readonly endpoint: string, readonly presented: PresentedHostKey | undefined) {
    super(`${endpoint} has no pinned host key${presented ? ` (it presents ${presented.algorithm} ${presented.fingerprint})` : ''}, and its credential is not sent to an unverified host: pin its key first`);
  }
}

export type HostKeyError = HostKeyMismatchError | HostKeyUnverifiedError;

export function isHostKeyError(err: unknown): err is HostKeyError {
  return err instanceof HostKeyMismatchError || err instanceof HostKeyUnverifiedError;
}

/** The answer to the presented key: resolves when it may be trusted, rejects with the reason otherwise. */
export async function checkHostKey(trust: HostKeyTrust, presented: PresentedHostKey, endpoint: string): Promise<void> {
  const pin = trust.pinned ?? (trust.pinOnFirstUse ? await trust.pinOnFirstUse(presented) : undefined);
  if (!pin) throw new HostKeyUnverifiedError(endpoint, presented);
  if (pin.fingerprint !== presented.fingerprint) throw new HostKeyMismatchError(endpoint, pin, presented);
}

// ssh2's own preference; a pinned type moves to the front.
const hostKeyAlgorithms = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/**
 * The pinned key's type first, so a host with several keys presents the pinned one; the
 * others stay allowed, so a host that lost that key presents another and fails by name
 * (rather than the handshake breaking off without saying why).
 */
function algorithmsPreferring(keyType: string): string[] {
  // RSA keys sign with SHA-2 under newer algorithm names; the key blob still says ssh-rsa.
  const first = keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [keyType];
  return [...first, ...hostKeyAlgorithms.filter((algorithm) => !first.includes(algorithm))];
}

interface HostKeyCheck {
  options: Pick<ConnectConfig, 'hostVerifier' | 'algorithms'>;
  /** The error ssh2 reports for a refused key, as ours (other errors as they are). */
  explain(err: Error): Error;
  /** The key the host presented, once it has. */
  presented(): PresentedHostKey | undefined;
}

/** The ssh2 options that check a host's key before anything else happens on the connection. */
export function hostKeyCheck(trust: HostKeyTrust, endpoint: string): HostKeyCheck {
  let refusal: Error | undefined;
  let presented: PresentedHostKey | undefined;
  const pinnedType = trust.pinned?.algorithm;
  return {
    options: {
      hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
        presented = presentedHostKey(key);
        checkHostKey(trust, presented, endpoint).then(
          () => verify(true),
          (err: unknown) => {
            refusal = err instanceof Error ? err : new Error(String(err));
            verify(false);
          },
        );
      },
      ...(pinnedType ? { algorithms: { serverHostKey: algorithmsPreferring(pinnedType) as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] } } : {}),
    },
    explain: (err) => refusal ?? err,
    presented: () => presented,
  };
}

/**
 * Reads the key a host presents, without authenticating: the handshake is refused right after
 * the key arrives, so the host learns nothing but that someone knocked.
 */
export function readHostKey(host: string, port: number, timeoutMs = 10_000): Promise<PresentedHostKey> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let presented: PresentedHostKey | undefined;
    const settle = (err?: Error) => {
      client.end();
      if (presented) resolve(presented);
      else reject(err ?? new Error(`${host}:${port} closed the connection before presenting a host key`));
    };
    client.on('error', settle);
    client.on('close', () => settle());
    client.connect({
      host, port, username: 'sessionflow-host-key-probe', readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        presented = presentedHostKey(key);
        return false;
      },
    });
  });
}
