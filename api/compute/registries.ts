import type { Pool } from 'pg';
import { z } from 'zod';
import { createRegistryStore, type RegistryRow } from '../../activities/compute/registryStore';
import { computeSecretsSealer } from '../../activities/compute/secretStore';
import { registryBody, registryNameField } from '../../domain/compute/imageCommit';
import type { Config } from '../../platform/config';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';

const base = '/api/v1/admin/registries';
const problems = (codes: string) => ({ description: codes, contentType: 'application/problem+json' });

/** The registry the bring-up runs (REGISTRY_ADDRESS): the one a convert goes to when it names none. */
export const defaultRegistryName = 'local';

const registryView = z.object({ name: z.string(), address: z.string(), username: z.string().nullable(), has_password: z.boolean(), created_at: z.string(), updated_at: z.string() });
// The password is never in an answer: only whether there is one.
const presentRegistry = (row: RegistryRow) => ({
  name: row.name, address: row.address, username: row.username, has_password: row.username !== null, created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString(),
});
const nameParams = z.object({ name: registryNameField });

export const registryNotFound = (name: string) => new ApiError('NotFound', `no registry ${name}`, { registry: name });

/** Written at api start where no row exists, beside the built-in images: `local` is REGISTRY_ADDRESS. */
export async function seedDefaultRegistry(pool: Pool, config: Pick<Config, 'REGISTRY_ADDRESS' | 'COMPUTE_SECRETS_KEY'>): Promise<void> {
  await createRegistryStore(pool, computeSecretsSealer(config.COMPUTE_SECRETS_KEY)).seed(defaultRegistryName, config.REGISTRY_ADDRESS);
}

/** Registries sessions are converted into (admin reference data); credentials sealed with COMPUTE_SECRETS_KEY. */
export function registerRegistryRoutes(api: ApiRoutes, deps: { pool: Pool; secretsKey: string | undefined }): void {
  const store = createRegistryStore(deps.pool, computeSecretsSealer(deps.secretsKey));

  api.route(
    {
      method: 'put', path: `${base}/:name`, summary: 'Create or replace a registry: address (host:port), optional username and password (sealed at rest)', tag: 'compute', access: 'admin', params: nameParams, body: registryBody,
      responses: { 201: { description: 'created', schema: registryView }, 200: { description: 'replaced', schema: registryView }, 400: problems('ValidationFailed'), 503: problems('SecretsKeyMissing') },
    },
    async ({ params, body, res }) => {
      const { created } = await store.put(params.name, body);
      res.status(created ? 201 : 200).location(`${base}/${params.name}`).json(presentRegistry((await store.get(params.name))!));
    },
  );

  api.route(
    { method: 'get', path: base, summary: 'List registries (no passwords)', tag: 'compute', access: 'admin', responses: { 200: { description: 'registries', schema: z.object({ items: z.array(registryView) }) } } },
    async ({ res }) => {
      res.json({ items: (await store.list()).map(presentRegistry) });
    },
  );

  api.route(
    { method: 'get', path: `${base}/:name`, summary: 'A registry (no password)', tag: 'compute', access: 'admin', params: nameParams, responses: { 200: { description: 'the registry', schema: registryView }, 404: problems('NotFound') } },
    async ({ params, res }) => {
      const row = await store.get(params.name);
      if (!row) throw registryNotFound(params.name);
      res.json(presentRegistry(row));
    },
  );

  api.route(
    { method: 'delete', path: `${base}/:name`, summary: 'Remove a registry (images pushed to it stay registered)', tag: 'compute', access: 'admin', params: nameParams, responses: { 204: { description: 'removed' }, 404: problems('NotFound') } },
    async ({ params, res }) => {
      if (!(await store.remove(params.name))) throw registryNotFound(params.name);
      res.status(204).end();
    },
  );
}
