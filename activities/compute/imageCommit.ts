import { Context, log } from '@temporalio/activity';
import type Docker from 'dockerode';
import type { Pool } from 'pg';
import { commitImageTag, type CommitProgress, type LayerProgress, type RegistryTarget } from '../../domain/compute/imageCommit';
import { domainFailure } from '../../domain/shared/errors';
import type { Sealer } from '../../platform/sealer';
import { ignoreNotFound, statusOf } from '../shared/docker';
import { deleteTaggedManifest, RegistryHttpError } from '../shared/registry';
import { createCommitStore } from './commitStore';
import { createRegistryStore } from './registryStore';

/** On a committed image: which commit made it (a retried commit finds it by its tag). */
export const computeCommitLabel = 'org.sessionflow.compute-commit';
/** The commit row's progress is written at most this often while a push goes on (the heartbeat carries every step). */
const progressWriteMs = 1000;
/** A push that sends no event for a while still heartbeats, so a cancel reaches it and a live push is not timed out. */
const quietHeartbeatMs = 5000;

/** What the engine says of a refused push: a registry's word on credentials is final, retrying cannot help. */
const refusedByRegistry = /unauthori[sz]ed|denied|authentication required|no basic auth credentials|forbidden|invalid username|incorrect username/i;

interface PushEvent {
  id?: string;
  status?: string;
  error?: string;
  progressDetail?: { current?: number; total?: number };
}

/**
 * The node's side of committing a session's main kernel: `docker commit`, a tag for the
 * registry, `docker push` with the registry's credentials (heartbeating layer progress), and
 * removing what a commit made. Each is idempotent: the commit image is found by its tag, a tag
 * made again is the same, a push again is deduplicated by the registry, removing what is gone is done.
 */
export function createImageCommitNodeActivities({ docker, pool, sealer }: { docker: Docker; pool: Pool; sealer: Sealer }) {
  const registries = createRegistryStore(pool, sealer);
  const commits = createCommitStore(pool);

  return {
    /**
     * Snapshots the kernel's container (paused for the moment of the commit) into
     * `sessionflow-commit:<commitId>`. Environment variables the session added (its secret_env
     * among them) are blanked in the image: an image travels to registries, secrets must not.
     */
    async commitKernel({ commitId, containerId }: { commitId: string; containerId: string }): Promise<{ imageId: string; sizeBytes: number }> {
      const { repo, tag } = commitImageTag(commitId);
      const made = await ignoreNotFound(docker.getImage(`${repo}:${tag}`).inspect());
      if (made) return { imageId: made.Id, sizeBytes: made.Size };
      const raw = `${repo}:${tag}-raw`;
      if (!(await ignoreNotFound(docker.getImage(raw).inspect()))) {
        const container = docker.getContainer(containerId);
        const info = await ignoreNotFound(container.inspect());
        if (!info) throw domainFailure('ContainerLost', `kernel container ${containerId} is gone from this node`, { containerId });
        const base = await ignoreNotFound(docker.getImage(info.Image).inspect());
        const baseEnv = new Set(base?.Config.Env ?? []);
        const blanked = (info.Config.Env ?? []).filter((entry) => !baseEnv.has(entry)).map((entry) => `ENV ${entry.slice(0, entry.indexOf('='))}=`);
        await container.commit({ repo, tag: `${tag}-raw`, pause: true, comment: `sessionflow commit ${commitId}`, changes: blanked });
      }
      // The engine writes the committed container's whole config into the image too
      // (container_config, environment included: secret_env). Committed again from a container
      // of that image, never started, the image carries only the blanked environment; no layer is added.
      const wrapperName = commitWrapperName(commitId);
      const wrapper = (await ignoreNotFound(docker.getContainer(wrapperName).inspect()))
        ? docker.getContainer(wrapperName)
        : await docker.createContainer({ name: wrapperName, Image: raw, NetworkDisabled: true, HostConfig: { NetworkMode: 'none' } });
      await wrapper.commit({ repo, tag, comment: `sessionflow commit ${commitId}`, changes: [`LABEL ${computeCommitLabel}=${commitId}`] });
      await ignoreNotFound(wrapper.remove({ force: true }));
      await ignoreNotFound(docker.getImage(raw).remove());
      const image = await docker.getImage(`${repo}:${tag}`).inspect();
      log.info('kernel committed', { commitId, containerId, imageId: image.Id, sizeBytes: image.Size });
      return { imageId: image.Id, sizeBytes: image.Size };
    },

    /** Tags the commit's image with the reference it is pushed under (repo:tag); tagging again is the same. */
    async tagCommitImage({ commitId, repo, tag }: { commitId: string; repo: string; tag: string }): Promise<void> {
      const { repo: commitRepo, tag: commitTag } = commitImageTag(commitId);
      await docker.getImage(`${commitRepo}:${commitTag}`).tag({ repo, tag });
    },

    /**
     * Pushes `reference` to the registry with its credentials, heartbeating the progress of each
     * layer; the commit row gets it too, at most once a second. No overall timeout: a large
     * image takes as long as it takes while it moves. A cancel aborts the engine's push.
     * The registry's refusal (credentials) is RegistryPushError, not retried.
     */
    async pushCommitImage({ commitId, reference, registry, progress: start }: { commitId: string; reference: string; registry: RegistryTarget; progress: CommitProgress }): Promise<CommitProgress> {
      const activity = Context.current();
      // The phase is the workflow's (pushing, or registering for the owner's tag, whose layers the registry has).
      const progress: CommitProgress = { ...start, layers: structuredClone(start.layers) };
      sumLayers(progress);
      const credentials = await registries.credentials(registry.name);
      const authconfig = credentials ? { ...credentials, serveraddress: registry.address } : { username: '', password: '', serveraddress: registry.address };
      let lastWrite = 0;
      const report = (force = false) => {
        activity.heartbeat(progress);
        if (force || Date.now() - lastWrite >= progressWriteMs) {
          lastWrite = Date.now();
          commits.progress(commitId, progress).catch((err: unknown) => log.warn('commit progress not written', { commitId, error: String(err) }));
        }
      };
      const quiet = setInterval(() => activity.heartbeat(progress), quietHeartbeatMs);
      try {
        report(true);
        const stream = await docker.getImage(reference).push({ authconfig, abortSignal: activity.cancellationSignal });
        const events = await new Promise<PushEvent[]>((resolve, reject) => {
          docker.modem.followProgress(stream, (err: Error | null, done: PushEvent[]) => (err ? reject(err) : resolve(done)), (event: PushEvent) => {
            if (event.id && applyLayerEvent(progress.layers, event)) {
              sumLayers(progress);
              report();
            }
          });
        });
        const failed = events.find((event) => event.error);
        if (failed) throw pushFailure(registry, failed.error!);
      } catch (err) {
        // Cancelled: the engine's push was aborted; the workflow must see a cancel, not a failure.
        if (activity.cancellationSignal.aborted) throw activity.cancellationSignal.reason ?? err;
        if (err instanceof Error && err.name === 'ApplicationFailure') throw err;
        if (statusOf(err) !== undefined || refusedByRegistry.test(String(err))) throw pushFailure(registry, (err as Error).message);
        throw err;
      } finally {
        clearInterval(quiet);
      }
      for (const layer of Object.values(progress.layers)) layer.current = layer.total;
      sumLayers(progress);
      report(true);
      return progress;
    },

    /**
     * Deletes what a cancelled or failed convert published in the registry (its manifest, by
     * digest, through the registry's API with its credentials): a push may finish between the
     * cancel and its arrival. Nothing there, done; a registry that refuses deletes keeps it (logged).
     */
    async unpublishCommitImage({ commitId, reference, registry }: { commitId: string; reference: string; registry: RegistryTarget }): Promise<{ removed: boolean }> {
      const credentials = await registries.credentials(registry.name);
      try {
        return { removed: await deleteTaggedManifest(registry.address, reference, credentials) };
      } catch (err) {
        if (!(err instanceof RegistryHttpError) || ![401, 403, 405].includes(err.status)) throw err;
        log.warn('the registry keeps what the commit pushed: it refuses deletes', { commitId, reference, registry: registry.name, status: err.status });
        return { removed: false };
      }
    },

    /** Removes the commit's local tags (the pushed reference and the commit's own): what a failed or cancelled convert made on the node. */
    async removeCommitImages({ commitId, references }: { commitId: string; references: string[] }): Promise<void> {
      const { repo, tag } = commitImageTag(commitId);
      await ignoreNotFound(docker.getContainer(commitWrapperName(commitId)).remove({ force: true }));
      for (const reference of [...references, `${repo}:${tag}`, `${repo}:${tag}-raw`]) {
        try {
          await ignoreNotFound(docker.getImage(reference).remove());
        } catch (err) {
          // In use by a container (a session started from it on this node): the tag stays; nothing to undo then.
          if (statusOf(err) !== 409) throw err;
          log.warn('commit image in use: kept', { commitId, reference });
        }
      }
    },
  };
}

export type ImageCommitNodeActivities = ReturnType<typeof createImageCommitNodeActivities>;

/** The never-started container a commit is committed again from (commitKernel). */
const commitWrapperName = (commitId: string) => `sf-commit-${commitId}`;

function pushFailure(registry: RegistryTarget, reason: string) {
  return domainFailure('RegistryPushError', `registry ${registry.name} (${registry.address}) refused the push: ${reason}`, { registry: registry.name, reason });
}

/** One engine event into the layer's progress; whether anything changed. */
function applyLayerEvent(layers: Record<string, LayerProgress>, event: PushEvent): boolean {
  const id = event.id!;
  const layer = layers[id] ?? { current: 0, total: 0 };
  const detail = event.progressDetail;
  if (event.status === 'Pushing' && detail?.total) {
    layer.total = detail.total;
    layer.current = Math.min(detail.current ?? 0, detail.total);
  } else if (event.status === 'Pushed' || event.status === 'Layer already exists' || event.status?.startsWith('Mounted from')) {
    layer.current = layer.total;
  } else if (!layers[id] && (event.status === 'Preparing' || event.status === 'Waiting')) {
    // A layer to come: counted once its size is known.
  } else {
    return false;
  }
  layers[id] = layer;
  return true;
}

function sumLayers(progress: CommitProgress): void {
  const layers = Object.values(progress.layers);
  progress.bytesPushed = layers.reduce((sum, layer) => sum + layer.current, 0);
  progress.bytesTotal = layers.reduce((sum, layer) => sum + layer.total, 0);
}
