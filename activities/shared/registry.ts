import type Docker from 'dockerode';

/** A container registry's HTTP API (v2) and Docker's progress streams, as activities use them. */

const manifestTypes = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');

export interface RegistryAuth {
  username: string;
  password: string;
}

/** An answer of the registry other than the one expected, with its status (401/403: credentials; 405: deletes disabled). */
export class RegistryHttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'RegistryHttpError';
  }
}

/**
 * Plain HTTP for a registry on loopback or under a name without a dot (a compose service such as
 * `registry:5000`, which the engine is told is insecure), TLS for one under a domain name.
 */
export function registryScheme(address: string): 'http' | 'https' {
  const host = address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === '::1' || host.startsWith('127.') || !host.includes('.') ? 'http' : 'https';
}

/** `address/repo/name:tag` → repository and tag in that registry (no tag: latest). */
export function splitReference(address: string, reference: string): { repository: string; tag: string } {
  const path = reference.slice(address.length + 1);
  const colon = path.lastIndexOf(':');
  return colon > path.lastIndexOf('/') ? { repository: path.slice(0, colon), tag: path.slice(colon + 1) } : { repository: path, tag: 'latest' };
}

const authHeaders = (auth?: RegistryAuth): Record<string, string> =>
  auth ? { Authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` } : {};

/** The digest of `repository:tag` in the registry at `registryAddress` (host:port), or undefined when it has none. */
export async function manifestDigest(registryAddress: string, repository: string, tag: string, auth?: RegistryAuth): Promise<string | undefined> {
  const response = await fetch(`${registryScheme(registryAddress)}://${registryAddress}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { ...authHeaders(auth), Accept: manifestTypes } });
  if (response.status === 404) return undefined;
  if (!response.ok) throw new RegistryHttpError(response.status, `registry ${registryAddress} answered ${response.status} for manifest ${repository}:${tag}`);
  return response.headers.get('docker-content-digest') ?? undefined;
}

/** Deletes a manifest by digest; one already gone is fine. */
export async function deleteManifest(registryAddress: string, repository: string, digest: string, auth?: RegistryAuth): Promise<void> {
  const deleted = await fetch(`${registryScheme(registryAddress)}://${registryAddress}/v2/${repository}/manifests/${digest}`, { method: 'DELETE', headers: authHeaders(auth) });
  if (deleted.status !== 202 && deleted.status !== 404) throw new RegistryHttpError(deleted.status, `registry ${registryAddress} refused to delete ${digest}: ${deleted.status}`);
}

/** Deletes the manifest a reference (`address/repo:tag`) names now, by its digest; whether there was one. */
export async function deleteTaggedManifest(address: string, reference: string, auth?: RegistryAuth): Promise<boolean> {
  const { repository, tag } = splitReference(address, reference);
  const digest = await manifestDigest(address, repository, tag, auth);
  if (!digest) return false;
  await deleteManifest(address, repository, digest, auth);
  return true;
}

interface ProgressEvent {
  status?: string;
  error?: string;
}

/** Waits for a pull, push or import to finish; a refused push shows as an event's `error`. */
export function followProgress(docker: Docker, stream: NodeJS.ReadableStream): Promise<ProgressEvent[]> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, events: ProgressEvent[]) => (err ? reject(err) : resolve(events)));
  });
}
