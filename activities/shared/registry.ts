import type Docker from 'dockerode';

/** A container registry's HTTP API (v2) and Docker's progress streams, as activities use them. */

const manifestTypes = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');

/** The digest of `repository:tag` in the registry at `registryAddress` (host:port), or undefined when it has none. */
export async function manifestDigest(registryAddress: string, repository: string, tag: string): Promise<string | undefined> {
  const response = await fetch(`http://${registryAddress}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { Accept: manifestTypes } });
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`registry answered ${response.status} for manifest ${tag}`);
  return response.headers.get('docker-content-digest') ?? undefined;
}

/** Deletes a manifest by digest; one already gone is fine. */
export async function deleteManifest(registryAddress: string, repository: string, digest: string): Promise<void> {
  const deleted = await fetch(`http://${registryAddress}/v2/${repository}/manifests/${digest}`, { method: 'DELETE' });
  if (deleted.status !== 202 && deleted.status !== 404) throw new Error(`registry refused to delete ${digest}: ${deleted.status}`);
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
