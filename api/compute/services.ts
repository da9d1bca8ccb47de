import { sessionEnded, sessionWorkflowLookup } from './sessionWorkflow';
import { WorkflowNotFoundError } from '@temporalio/client';
import { createHash } from 'node:crypto';
import { utils } from 'ssh2';
import { z } from 'zod';
import type { ClusterKeyPair } from '../../activities/compute/clusterKeys';
import { createSecretStore } from '../../activities/compute/secretStore';
import { createServiceStore } from '../../activities/compute/serviceStore';
import { createComputeStore } from '../../activities/compute/store';
import { serviceNameField, startServiceBody } from '../../domain/compute/apps';
import { directAccessServiceName, directAccessUpdate, serviceHost, shutdownServiceUpdate, startServiceUpdate } from '../../domain/compute/services';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import type { KernelRouteDeps } from './kernelActions';
import { presentService, serviceView } from './serviceViews';
import { sessionsBase } from './sessions';

const idParams = z.object({ id: z.uuid() });
const serviceParams = z.object({ id: z.uuid(), name: serviceNameField });
const problems = (codes: string) => ({ description: codes, contentType: 'application/problem+json' });

const directAccessView = z.object({
  host: z.literal(serviceHost),
  port: z.number(),
  user: z.literal('work'),
  private_key: z.string().describe('OpenSSH private key (ed25519) that logs in as work'),
  public_key: z.string(),
  host_key_fingerprint: z.string().describe('SHA256:… of the key sshd presents (the session\'s key pair is also its host key)'),
  service: serviceView,
});

/** OpenSSH's fingerprint of a public key: SHA256 of its wire form, base64 without padding. */
function fingerprintOf(publicKey: string): string {
  const parsed = utils.parseKey(publicKey);
  if (parsed instanceof Error) throw parsed;
  const key = Array.isArray(parsed) ? parsed[0]! : parsed;
  return `SHA256:${createHash('sha256').update(key.getPublicSSH()).digest('base64').replace(/=+$/, '')}`;
}

/**
 * In-session services: start an app of the session's image in its main kernel (seed 8), stop it,
 * list them, and direct access (the main kernel's sshd). Starts and stops are updates on the
 * session's workflow (RUNNING only); the services and their sealed tokens are read from
 * PostgreSQL, so no token travels through a workflow's history.
 */
export function registerServiceRoutes(api: ApiRoutes, deps: KernelRouteDeps): void {
  const store = createComputeStore(deps.pool, deps.compute);
  const services = createServiceStore(deps.pool, deps.compute.sealer);
  const secrets = createSecretStore(deps.pool, deps.compute.sealer);

  const sessionFor = sessionWorkflowLookup(store, deps.temporal);
  /** An ended session has no workflow to ask, and no services. */
  const ended = sessionEnded;

  api.route(
    {
      method: 'post', path: `${sessionsBase}/:id/services`, summary: 'Start an app of the session\'s image (jupyter, custom apps) in its main kernel, reached on the node\'s loopback; the same app again answers the running service',
      tag: 'compute', access: 'user', params: idParams, body: startServiceBody,
      responses: {
        201: { description: 'started: the url (jupyter\'s with its token), the ports, and whether the one asked for was taken (seed 8.3)', schema: serviceView },
        200: { description: 'it was running already', schema: serviceView },
        400: problems('ValidationFailed (a port outside 1024-65535; port and args.port differ)'),
        404: problems('SessionNotFound; AppNotFound: the image offers no such app (available: what it offers)'),
        409: problems('InvalidSessionState: not RUNNING'),
        502: problems('ServiceStartFailed: the app exited or did not answer on its port within 60 s (log: its output\'s tail); KernelFailed'),
        503: problems('AgentNotAvailable; SecretsKeyMissing'),
      },
    },
    async ({ params, body, principal, res }) => {
      const { info, handle } = await sessionFor(params.id, principal);
      const apps = await services.sessionApps(params.id);
      const app = Object.hasOwn(apps, body.app_name) ? apps[body.app_name] : undefined;
      if (!app) {
        throw new ApiError('AppNotFound', `the image ${info.image} has no app ${body.app_name}`, { app_name: body.app_name, available: Object.keys(apps).sort() });
      }
      const existed = await services.service(params.id, body.app_name);
      try {
        await handle.executeUpdate(startServiceUpdate, { args: [{ name: body.app_name, app, port: body.port ?? body.args?.port ?? app.port }] });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw ended(params.id, info.status);
        throw err;
      }
      const row = await services.service(params.id, body.app_name);
      if (!row) throw new ApiError('ServiceNotFound', `service ${body.app_name} was stopped meanwhile`, { service: body.app_name });
      res.status(existed ? 200 : 201).location(`${sessionsBase}/${params.id}/services/${row.name}`).json(presentService(row, services));
    },
  );

  api.route(
    {
      method: 'get', path: `${sessionsBase}/:id/services`, summary: 'The session\'s services (apps and direct access), with their urls and tokens',
      tag: 'compute', access: 'user', params: idParams,
      responses: { 200: { description: 'oldest first', schema: z.object({ items: z.array(serviceView) }) }, 404: problems('SessionNotFound') },
    },
    async ({ params, principal, res }) => {
      await sessionFor(params.id, principal);
      res.json({ items: (await services.sessionServices(params.id)).map((row) => presentService(row, services)) });
    },
  );

  api.route(
    {
      method: 'delete', path: `${sessionsBase}/:id/services/:name`, summary: 'Stop a service: its app ends and its url refuses; direct access (sshd) only loses its listener',
      tag: 'compute', access: 'user', params: serviceParams,
      responses: {
        204: { description: 'stopped' },
        404: problems('SessionNotFound; ServiceNotFound: none of that name runs (never started, or stopped already)'),
        409: problems('InvalidSessionState: not RUNNING'),
      },
    },
    async ({ params, principal, res }) => {
      const { handle } = await sessionFor(params.id, principal);
      const notFound = new ApiError('ServiceNotFound', `session ${params.id} runs no service ${params.name}`, { service: params.name });
      if (!(await services.service(params.id, params.name))) throw notFound;
      try {
        await handle.executeUpdate(shutdownServiceUpdate, { args: [{ name: params.name }] });
      } catch (err) {
        // The session ended meanwhile: its services went with it.
        if (err instanceof WorkflowNotFoundError) throw notFound;
        throw err;
      }
      res.status(204).end();
    },
  );

  api.route(
    {
      method: 'get', path: `${sessionsBase}/:id/direct-access`, summary: 'SSH into the main kernel: its sshd (started when needed) on the node\'s loopback, the user, the session\'s private key and the host key\'s fingerprint',
      tag: 'compute', access: 'user', params: idParams,
      responses: {
        200: { description: 'how to log in: ssh -i <private_key> -p <port> work@127.0.0.1', schema: directAccessView },
        404: problems('SessionNotFound'),
        409: problems('InvalidSessionState: not RUNNING'),
        502: problems('ServiceStartFailed: sshd did not start; KernelFailed'),
        503: problems('AgentNotAvailable; SecretsKeyMissing'),
      },
    },
    async ({ params, principal, res }) => {
      const { info, handle } = await sessionFor(params.id, principal);
      try {
        await handle.executeUpdate(directAccessUpdate);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw ended(params.id, info.status);
        throw err;
      }
      const [row, plaintext] = await Promise.all([services.service(params.id, directAccessServiceName), secrets.open(params.id)]);
      if (!row || plaintext === undefined) throw new ApiError('ServiceNotFound', `direct access to session ${params.id} was closed meanwhile`, { service: directAccessServiceName });
      const pair = JSON.parse(plaintext) as ClusterKeyPair;
      res.json({
        host: serviceHost, port: row.host_port, user: 'work' as const, private_key: pair.privateKey, public_key: pair.publicKey.trim(),
        host_key_fingerprint: fingerprintOf(pair.publicKey), service: presentService(row, services),
      });
    },
  );
}
