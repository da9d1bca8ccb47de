import type Docker from 'dockerode';
import { domainFailure } from '../../domain/shared/errors';
import { timed } from '../selfCheck/timing';

export interface DockerActivityDeps {
  docker: Docker;
  baseImage: string;
  instance: string;
}

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

const probeMarker = 'sessionflow-probe-ok';

export function createDockerActivities({ docker, baseImage, instance }: DockerActivityDeps) {
  return {
    async pingDocker() {
      return timed(async () => {
        const version = await docker.version();
        return `engine ${version.Version} (API ${version.ApiVersion})`;
      });
    },

    /** Runs a short-lived container from the base image and reads what it printed. */
    async runProbeContainer({ probeId }: { probeId: string }) {
      const name = `sf-probe-${probeId}`;
      return timed(async () => {
        await ensureImage(docker, baseImage);
        // An earlier attempt may have died after creating the container: replace it.
        await removeContainerIfPresent(docker, name);
        const container = await docker.createContainer({
          name,
          Image: baseImage,
          Cmd: ['python3', '-c', `import sys; print("${probeMarker}", sys.version.split()[0])`],
          Labels: sessionflowLabels(instance, 'self-check'),
          NetworkDisabled: true,
          HostConfig: { Memory: 64 * 1024 * 1024, PidsLimit: 32, NetworkMode: 'none' },
        });
        try {
          await container.start();
          const { StatusCode } = (await container.wait()) as { StatusCode: number };
          const output = demultiplex(await container.logs({ stdout: true, stderr: true, follow: false }));
          if (StatusCode !== 0 || !output.startsWith(probeMarker)) {
            throw new Error(`probe container exited ${StatusCode}: ${output.slice(0, 200)}`);
          }
          return `${baseImage} ran python ${output.slice(probeMarker.length).trim()}`;
        } finally {
          // The probe's verdict stands even when the cleanup fails; the next attempt replaces the container.
          await removeContainerIfPresent(docker, name).catch(() => undefined);
        }
      });
    },
  };
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
