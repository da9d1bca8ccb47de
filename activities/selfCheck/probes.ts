import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ActivityDeps } from '..';
import { pack } from 'tar-stream';
import type { CheckOutcome } from '../../domain/selfCheck/selfCheck';
import { domainFailure } from '../../domain/shared/errors';
import { fitHostConfig } from '../shared/containerRuntime';
import { demultiplex, ensureImage, ignoreNotFound, removeContainerIfPresent, sessionflowLabels } from '../shared/docker';
import { deleteManifest, followProgress, manifestDigest } from '../shared/registry';
import { createSelfCheckStore } from './store';

export type SelfCheckActivityDeps = Pick<ActivityDeps, 'docker' | 'pool' | 'baseImage' | 'instance' | 'registryAddress' | 'containerRuntime'>;

const probeMarker = 'sessionflow-probe-ok';
const probeRepository = 'sessionflow/self-check';

/**
 * The self-check's probes, one per piece of real infrastructure. Each names what it makes
 * after the probe id, so a retried probe finds (and replaces) what an earlier attempt left.
 */
export function createSelfCheckActivities({ docker, pool, baseImage, instance, registryAddress, containerRuntime }: SelfCheckActivityDeps) {
  const store = createSelfCheckStore(pool);
  return {
    async pingDocker() {
      return timed(async () => {
        const version = await docker.version();
        return `engine ${version.Version} (API ${version.ApiVersion})`;
      });
    },

    /**
     * Runs a short-lived container from the base image, under the runtime sessions get, and
     * reads what it printed: the Python version and the kernel release the container sees
     * (gVisor's own under runsc), so the report shows which isolation is in use.
     */
    async runProbeContainer({ probeId }: { probeId: string }) {
      const name = `sf-probe-${probeId}`;
      return timed(async () => {
        await ensureImage(docker, baseImage);
        // An earlier attempt may have died after creating the container: replace it.
        await removeContainerIfPresent(docker, name);
        const runtime = await containerRuntime();
        const container = await docker.createContainer({
          name,
          Image: baseImage,
          Cmd: ['python3', '-c', `import platform; print("${probeMarker}", platform.python_version(), platform.release())`],
          Labels: sessionflowLabels(instance, 'self-check'),
          NetworkDisabled: true,
          HostConfig: fitHostConfig(runtime, { Memory: 64 * 1024 * 1024, PidsLimit: 32, NetworkMode: 'none' }),
        });
        try {
          await container.start();
          const { StatusCode } = (await container.wait()) as { StatusCode: number };
          const output = demultiplex(await container.logs({ stdout: true, stderr: true, follow: false }));
          if (StatusCode !== 0 || !output.startsWith(probeMarker)) {
            throw new Error(`probe container exited ${StatusCode}: ${output.slice(0, 200)}`);
          }
          const [python, kernel] = output.slice(probeMarker.length).trim().split(' ');
          return `${baseImage} ran python ${python} under ${runtime} (kernel ${kernel})`;
        } finally {
          // The probe's verdict stands even when the cleanup fails; the next attempt replaces the container.
          await removeContainerIfPresent(docker, name).catch(() => undefined);
        }
      });
    },

    /** Writes a row, reads it back and deletes it. */
    async roundTripProbeRow({ probeId }: { probeId: string }) {
      return timed(async () => {
        const nonce = randomUUID();
        await store.writeProbeRow(probeId, nonce);
        const readBack = await store.probeNonce(probeId);
        await store.deleteProbeRow(probeId);
        if (readBack !== nonce) throw new Error('the row read back is not the row written');
        return `PostgreSQL ${await store.serverVersion()}: row written, read back and deleted`;
      });
    },

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

          const digest = await manifestDigest(registryAddress, probeRepository, probeId);
          if (!digest) throw new Error(`pushed ${reference} but the registry does not list it`);
          await deleteManifest(registryAddress, probeRepository, digest);
          if (await manifestDigest(registryAddress, probeRepository, probeId)) throw new Error(`registry still lists ${reference} after deleting it`);
          return `pushed and deleted ${reference} (${digest.slice(0, 19)}…)`;
        } finally {
          await ignoreNotFound(docker.getImage(reference).remove({ force: true }));
        }
      });
    },
  };
}

export type SelfCheckActivities = ReturnType<typeof createSelfCheckActivities>;

/** Runs a probe and reports how long it took, measured here rather than in workflow time. */
async function timed(probe: () => Promise<string>): Promise<CheckOutcome> {
  const started = performance.now();
  const detail = await probe();
  return { detail, durationMs: Math.round(performance.now() - started) };
}

function probeImageTar(probeId: string): NodeJS.ReadableStream {
  const tar = pack();
  tar.entry({ name: 'sessionflow-probe.txt', mode: 0o644 }, `sessionflow self-check ${probeId}\n`);
  tar.finalize();
  return tar as unknown as NodeJS.ReadableStream; // a streamx Readable: pipe() is all docker-modem uses
}
