import type Docker from 'dockerode';
import { domainFailure } from '../../domain/shared/errors';

/**
 * Every container sessionflow creates carries these labels, so reconcilers can find orphans —
 * of their own instance only (several deployments or test runs may share one engine).
 */
export const managedLabel = 'org.sessionflow.managed';
export const kindLabel = 'org.sessionflow.kind';
export const instanceLabel = 'org.sessionflow.instance';

export function sessionflowLabels(instance: string, kind: string, extra: Record<string, string> = {}): Record<string, string> {
  return { [managedLabel]: 'true', [instanceLabel]: instance, [kindLabel]: kind, ...extra };
}

export async function ensureImage(docker: Docker, image: string): Promise<void> {
  if (!(await ignoreNotFound(docker.getImage(image).inspect()))) throw domainFailure('ImageNotFound', `image ${image} is not on this Docker engine`, { image });
}

/**
 * Docker answers 404 for a container or image that is not there. To a caller removing it, or
 * looking whether it exists, that is an answer (undefined), not a failure; anything else is.
 */
export async function ignoreNotFound<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
    return undefined;
  }
}

/** Removes a container, running or not, by name or id; one already gone is fine. */
export async function removeContainerIfPresent(docker: Docker, nameOrId: string): Promise<void> {
  await ignoreNotFound(docker.getContainer(nameOrId).remove({ force: true }));
}

export function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err ? Number((err as { statusCode: unknown }).statusCode) : undefined;
}

/** Docker multiplexes stdout/stderr of a non-TTY container in 8-byte-header frames. */
export function demultiplex(buffer: Buffer): string {
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    chunks.push(buffer.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(chunks).toString('utf8');
}
