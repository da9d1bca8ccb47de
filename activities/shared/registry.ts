import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import { domainFailure } from '../../domain/shared/errors';
import { ignoreNotFound } from './docker';
import { timed } from '../selfCheck/timing';

export interface RegistryActivityDeps {
  docker: Docker;
  /** host:port of the registry, as Docker names it in image references. */
  registryAddress: string;
}

const probeRepository = 'sessionflow/self-check';
const manifestTypes = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');

export function createRegistryActivities({ docker, registryAddress }: RegistryActivityDeps) {
  const registryUrl = `http://${registryAddress}`;

  async function manifestDigest(tag: string): Promise<string | undefined> {
    const response = await fetch(`${registryUrl}/v2/${probeRepository}/manifests/${tag}`, { method: 'HEAD', headers: { Accept: manifestTypes } });
    if (response.status === 404) return undefined;
    if (!response.ok) throw new Error(`registry answered ${response.status} for manifest ${tag}`);
    return response.headers.get('docker-content-digest') ?? undefined;
  }

  return {
    /**
     * Builds a one-file image, pushes it to the registry, checks the registry has it, then
     * deletes it there and locally. The tag is the probe id, so a retry pushes the same tag.
     */
    async pushAndDeleteProbeImage({ probeId }: { probeId: string }) {
      const reference = `${registryAddress}/${probeRepository}:${probeId}`;
      return timed(async () => {
        await followProgress(docker, await docker.importImage(probeImageTar(probeId), { repo: `${registryAddress}/${probeRepository}`, tag: probeId }));
        try {
          const events = await followProgress(docker, await docker.getImage(reference).push({ tag: probeId }));
          const refused = events.find((event) => event.error);
          if (refused) throw domainFailure('RegistryPushError', `push of ${reference} failed: ${refused.error}`, { reference });

          const digest = await manifestDigest(probeId);
          if (!digest) throw new Error(`pushed ${reference} but the registry does not list it`);
          const deleted = await fetch(`${registryUrl}/v2/${probeRepository}/manifests/${digest}`, { method: 'DELETE' });
          if (deleted.status !== 202 && deleted.status !== 404) throw new Error(`registry refused to delete ${digest}: ${deleted.status}`);
          if (await manifestDigest(probeId)) throw new Error(`registry still lists ${reference} after deleting it`);
          return `pushed and deleted ${reference} (${digest.slice(0, 19)}…)`;
        } finally {
          await ignoreNotFound(docker.getImage(reference).remove({ force: true }));
        }
      });
    },
  };
}

function probeImageTar(probeId: string): NodeJS.ReadableStream {
  const tar = pack();
  tar.entry({ name: 'sessionflow-probe.txt', mode: 0o644 }, `sessionflow self-check ${probeId}\n`);
  tar.finalize();
  return tar as unknown as NodeJS.ReadableStream; // a streamx Readable: pipe() is all docker-modem uses
}

interface ProgressEvent {
  status?: string;
  error?: string;
}

function followProgress(docker: Docker, stream: NodeJS.ReadableStream): Promise<ProgressEvent[]> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, events: ProgressEvent[]) => (err ? reject(err) : resolve(events)));
  });
}
