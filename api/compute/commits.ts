import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import type { Response } from 'express';
import { z } from 'zod';
import { createCommitStore, type CommitRow } from '../../activities/compute/commitStore';
import { createRegistryStore } from '../../activities/compute/registryStore';
import { computeSecretsSealer } from '../../activities/compute/secretStore';
import { createComputeStore } from '../../activities/compute/store';
import { deleteTaggedManifest } from '../../activities/shared/registry';
import { convertBody, convertImageNameField, defaultMaxCustomizedImages, startImageCommitUpdate, type CommitKind, type ImageCommitRequest } from '../../domain/compute/imageCommit';
import { makeComputeSessionWorkflowId, makeImageCommitWorkflowId } from '../../domain/compute/kind';
import type { computeSessionWorkflow } from '../../workflows/compute/computeSession';
import type { imageCommitWorkflow } from '../../workflows/compute/imageCommit';
import { ownerScope, type Principal } from '../platform/auth';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import { imageView, presentImage, type ComputeRouteDeps } from './admin';
import { registryNotFound } from './registries';
import { sessionNotFound, sessionsBase } from './sessions';

export interface CommitRouteDeps extends ComputeRouteDeps {
  temporal: Client;
  secretsKey: string | undefined;
}

const idParams = z.object({ id: z.uuid() });
const commitParams = z.object({ id: z.uuid(), commitId: z.uuid() });
const problems = (codes: string) => ({ description: codes, contentType: 'application/problem+json' });

const layerView = z.object({ current: z.number(), total: z.number() });
const commitView = z.object({
  commit_id: z.uuid(), session_id: z.uuid(), kind: z.enum(['commit', 'convert']), status: z.enum(['ongoing', 'finished', 'failed', 'cancelled']),
  image_name: z.string().nullable(), registry: z.string().nullable(),
  progress: z.object({ phase: z.string().nullable(), layers: z.record(z.string(), layerView), bytes_pushed: z.number(), bytes_total: z.number(), image_id: z.string().nullable() }),
  error: z.object({ code: z.string(), message: z.string() }).nullable(), created_at: z.string(), updated_at: z.string(),
});
const startedView = z.object({ commit_id: z.uuid(), status: z.literal('ongoing') });

const presentCommit = (row: CommitRow) => {
  const progress = row.progress as Partial<{ phase: string; layers: Record<string, { current: number; total: number }>; bytesPushed: number; bytesTotal: number; imageId: string }>;
  return {
    commit_id: row.id, session_id: row.session_id, kind: row.kind, status: row.status, image_name: row.image_name, registry: row.registry,
    progress: { phase: progress.phase ?? null, layers: progress.layers ?? {}, bytes_pushed: progress.bytesPushed ?? 0, bytes_total: progress.bytesTotal ?? 0, image_id: progress.imageId ?? null },
    error: row.error, created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString(),
  };
};

/** How long a cancel waits for the commit to have removed what it made before answering with the status then. */
const cancelWaitMs = 60_000;

/**
 * Commit a session's main kernel, convert it to an image in a registry, read a commit's status
 * and progress, cancel one (seed 000 actions 12, 23, 27). The commit is admitted in PostgreSQL
 * (one ongoing per session, the image quota) and then started as a child of the session's
 * workflow by an update, so it is attributed to the session and ends with it.
 */
export function registerCommitRoutes(api: ApiRoutes, deps: CommitRouteDeps): void {
  const sessions = createComputeStore(deps.pool, deps.compute);
  const commits = createCommitStore(deps.pool);
  const registries = createRegistryStore(deps.pool, computeSecretsSealer(deps.secretsKey));

  async function sessionOf(id: string, principal: Principal) {
    const info = await sessions.session(id, ownerScope(principal));
    if (!info) throw sessionNotFound(id);
    return info;
  }

  async function start(sessionId: string, principal: Principal, kind: CommitKind, res: Response, convert?: { imageName: string; registry: string }) {
    const info = await sessionOf(sessionId, principal);
    const registry = convert && await registries.get(convert.registry);
    if (convert && !registry) throw registryNotFound(convert.registry);
    if (info.status !== 'RUNNING') throw new ApiError('InvalidSessionState', `a commit needs a RUNNING session; ${sessionId} is ${info.status}`, { current_status: info.status, allowed: ['RUNNING'] });
    const commitId = randomUUID();
    await commits.begin({ commitId, sessionId, ownerId: info.owner_id, kind, imageName: convert?.imageName, registry: convert?.registry, defaultMaxCustomizedImages: deps.compute.defaultMaxCustomizedImages ?? defaultMaxCustomizedImages });
    const request: ImageCommitRequest = { commitId, kind, ...(convert && registry ? { imageName: convert.imageName, registry: { name: registry.name, address: registry.address } } : {}) };
    try {
      await deps.temporal.workflow.getHandle<typeof computeSessionWorkflow>(makeComputeSessionWorkflowId(sessionId)).executeUpdate(startImageCommitUpdate, { args: [request] });
    } catch (err) {
      // The row goes only when the commit surely did not start (an answer lost on the way may hide one that did).
      if (!(await commitStarted(sessionId, commitId))) await commits.discard(commitId);
      if (err instanceof WorkflowNotFoundError) throw new ApiError('InvalidSessionState', `session ${sessionId} has ended`, { current_status: info.status });
      throw err;
    }
    res.status(202).location(`${sessionsBase}/${sessionId}/commits/${commitId}`).json({ commit_id: commitId, status: 'ongoing' });
  }

  async function commitStarted(sessionId: string, commitId: string): Promise<boolean> {
    try {
      await deps.temporal.workflow.getHandle(makeImageCommitWorkflowId(sessionId, commitId)).describe();
      return true;
    } catch {
      // Not there, or Temporal cannot say (then most likely down, and nothing started): the row goes,
      // rather than block the session's commits for good.
      return false;
    }
  }

  const startResponses = {
    202: { description: 'the commit is going on: follow it with GET …/commits/{commit_id}', schema: startedView },
    404: problems('SessionNotFound'),
    409: problems('InvalidSessionState: not RUNNING, or a commit of the session is going on (commit_id)'),
  };

  api.route(
    { method: 'post', path: `${sessionsBase}/:id/commit`, summary: 'Commit the main kernel\'s container to an image on its node', tag: 'compute', access: 'user', params: idParams, responses: startResponses },
    async ({ params, principal, res }) => start(params.id, principal, 'commit', res),
  );

  api.route(
    {
      method: 'post', path: `${sessionsBase}/:id/convert`, summary: 'Convert the session to an image: commit, push to the registry, register it as yours (image_name name:tag)', tag: 'compute', access: 'user', params: idParams, body: convertBody,
      responses: { ...startResponses, 400: problems('ValidationFailed (image_name is not a name:tag reference)'), 403: problems('QuotaExceeded (max_customized_images)'), 404: problems('SessionNotFound, NotFound (registry)') },
    },
    async ({ params, body, principal, res }) => start(params.id, principal, 'convert', res, { imageName: body.image_name, registry: body.registry }),
  );

  api.route(
    {
      method: 'get', path: `${sessionsBase}/:id/commit`, summary: 'The session\'s latest commit: status and progress', tag: 'compute', access: 'user', params: idParams,
      responses: { 200: { description: 'the commit', schema: commitView }, 404: problems('SessionNotFound, NotFound (no commit yet)') },
    },
    async ({ params, principal, res }) => {
      await sessionOf(params.id, principal);
      const row = await commits.latest(params.id);
      if (!row) throw new ApiError('NotFound', `session ${params.id} has no commit`);
      res.json(presentCommit(row));
    },
  );

  api.route(
    {
      method: 'get', path: `${sessionsBase}/:id/commits/:commitId`, summary: 'A commit: status (ongoing, finished, failed, cancelled), progress by layer, error', tag: 'compute', access: 'user', params: commitParams,
      responses: { 200: { description: 'the commit', schema: commitView }, 404: problems('SessionNotFound, NotFound') },
    },
    async ({ params, principal, res }) => {
      await sessionOf(params.id, principal);
      const row = await commits.get(params.commitId, params.id);
      if (!row) throw new ApiError('NotFound', `no commit ${params.commitId} of session ${params.id}`);
      res.json(presentCommit(row));
    },
  );

  api.route(
    {
      method: 'delete', path: `${sessionsBase}/:id/commits/:commitId`, summary: 'Cancel a commit: the push stops and what it made is removed (an ended commit is answered as it is)', tag: 'compute', access: 'user', params: commitParams,
      responses: { 200: { description: 'the commit after the cancel', schema: commitView }, 404: problems('SessionNotFound, NotFound') },
    },
    async ({ params, principal, res }) => {
      await sessionOf(params.id, principal);
      const row = await commits.get(params.commitId, params.id);
      if (!row) throw new ApiError('NotFound', `no commit ${params.commitId} of session ${params.id}`);
      if (row.status === 'ongoing') {
        const handle = deps.temporal.workflow.getHandle<typeof imageCommitWorkflow>(makeImageCommitWorkflowId(params.id, params.commitId));
        try {
          await handle.cancel();
          // However the workflow ends (even failed), the row says how: it is the answer.
          await Promise.race([handle.result().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, cancelWaitMs).unref())]);
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
      }
      res.json(presentCommit((await commits.get(params.commitId, params.id))!));
    },
  );

  // ---- the user's own images (made by converting sessions) ----
  const myImageView = imageView.extend({ own: z.boolean().describe('made by converting one of your sessions (yours to remove); false: an admin\'s image for everyone') });
  api.route(
    {
      method: 'get', path: '/api/v1/images', summary: 'The images your sessions can be made of: yours (converted sessions) and everyone\'s', tag: 'compute', access: 'user',
      responses: { 200: { description: 'images, yours first', schema: z.object({ items: z.array(myImageView) }) } },
    },
    async ({ principal, res }) => {
      const [own, global] = await Promise.all([sessions.ownImages(principal.userId), sessions.images()]);
      const ownNames = new Set(own.map((image) => image.name));
      res.json({ items: [...own.map((image) => ({ ...presentImage(image), own: true })), ...global.filter((image) => !ownNames.has(image.name)).map((image) => ({ ...presentImage(image), own: false }))] });
    },
  );

  api.route(
    {
      method: 'delete', path: '/api/v1/images/:name', summary: 'Remove an image of yours (name URL-encoded): it no longer counts toward max_customized_images, and its manifest is deleted from its registry', tag: 'compute', access: 'user',
      params: z.object({ name: convertImageNameField }),
      responses: {
        200: { description: 'removed', schema: z.object({ name: z.string(), removed_from_registry: z.boolean().describe('false when the registry refuses deletes or cannot be reached: the image stays there, unregistered') }) },
        404: problems('ImageNotFound: no image of yours of that name (an admin\'s image is removed by an admin)'),
      },
    },
    async ({ params, principal, res }) => {
      const removed = await sessions.deleteOwnImage(principal.userId, params.name);
      if (!removed) throw new ApiError('ImageNotFound', `no image of yours named ${params.name}`, { image: params.name });
      res.json({ name: params.name, removed_from_registry: await unpublish(removed.reference, removed.registry) });
    },
  );

  /** A removed image's manifest deleted from its registry, with that registry's credentials; whether it went. */
  async function unpublish(reference: string, registryName: string | null): Promise<boolean> {
    const registry = registryName ? await registries.get(registryName) : undefined;
    if (!registry || !reference.startsWith(`${registry.address}/`)) return false;
    try {
      await deleteTaggedManifest(registry.address, reference, await registries.credentials(registry.name));
      return true;
    } catch {
      return false;
    }
  }
}
