import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type Docker from 'dockerode';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { ignoreNotFound } from '../../../activities/shared/docker';
import { createUserKey } from '../../../api/platform/auth';
import { commitImageTag, convertTarget } from '../../../domain/compute/imageCommit';
import { startApiHarness, type ApiHarness } from '../../helpers/api';
import { eventually, nodeBDocker, removeComputeLeftovers, startTestComputeNode } from '../../helpers/computeNode';
import { openInfra, type Infra } from '../../helpers/infra';
import { connectTestEnv } from '../../helpers/temporal';

/**
 * Committing a compute session and converting it to an image, end to end (seed 000 actions 12,
 * 23, 27; section 10): the api, the session and imageCommit workflows, node a on the main engine
 * (where the session runs and the commit is made), node b on the second engine (where a session
 * of the converted image starts, pulling it), the loopback registry and the one that requires
 * htpasswd credentials (scripts/ensure-registry.sh).
 */
let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
let nodeB: Docker;
let other: { key: string; userId: string };
const nodes: { stop(): Promise<void> }[] = [];
const tag = randomUUID().slice(0, 8);
const groupA = `e2e-ca-${tag}`;
const groupB = `e2e-cb-${tag}`;
const sessions: string[] = [];
const registries = [`auth-bad-${tag}`, `auth-ok-${tag}`, `missing-${tag}`];
const localAddress = process.env.REGISTRY_ADDRESS ?? '127.0.0.1:5000';
const authAddress = process.env.AUTH_REGISTRY_ADDRESS ?? '127.0.0.1:5001';
const authUser = process.env.AUTH_REGISTRY_USER ?? 'sessionflow';
const authPassword = process.env.AUTH_REGISTRY_PASSWORD ?? '';
/** What the tests pushed, to delete from the registries at the end. */
const pushed: { address: string; reference: string }[] = [];
let sessionId: string;

const as = (key: string) => ({ Authorization: `Bearer ${key}` });
const user = () => as(api.userKey);
const admin = () => as(api.adminKey);
const sessionPath = (id: string, action: string) => `/api/v1/sessions/${id}/${action}`;

/** The shared session's secret: no image made of it may carry it. */
const secretValue = `sekrit-${tag}`;

async function createSession(group: string, image = 'python:3.11', memory = '256M', key = api.userKey, extra: Record<string, unknown> = {}) {
  const res = await request(api.app).post('/api/v1/sessions').set(as(key)).send({ image, scaling_group: group, resources: { cpu: '1', memory }, ...extra });
  if (res.body.id) sessions.push(res.body.id as string);
  return res;
}

async function execute(id: string, body: Record<string, unknown>) {
  const res = await request(api.app).post(sessionPath(id, 'execute')).set(user()).send({ mode: 'query', timeout: 120, ...body });
  expect(res.status).toBe(200);
  expect(res.body.exit_code).toBe(0);
  return res.body as { stdout: string; result: unknown };
}

interface CommitView { commit_id: string; status: string; error: { code: string; message: string } | null; progress: { phase: string | null; bytes_pushed: number; bytes_total: number; image_id: string | null } }

/** Polls the commit until it has ended; every answer seen along the way. */
async function untilEnded(id: string, commitId: string, seconds = 300): Promise<CommitView[]> {
  const seen: CommitView[] = [];
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const res = await request(api.app).get(sessionPath(id, `commits/${commitId}`)).set(user()).expect(200);
    seen.push(res.body as CommitView);
    if (res.body.status !== 'ongoing' || Date.now() > deadline) return seen;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const imageOn = (docker: Docker, reference: string) => ignoreNotFound(docker.getImage(reference).inspect());

async function manifestStatus(address: string, reference: string, auth?: string): Promise<number> {
  const path = reference.slice(address.length + 1);
  const colon = path.lastIndexOf(':');
  const res = await fetch(`http://${address}/v2/${path.slice(0, colon)}/manifests/${path.slice(colon + 1)}`, {
    method: 'HEAD', headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json', ...(auth ? { Authorization: `Basic ${auth}` } : {}) },
  });
  return res.status;
}

const basic = Buffer.from(`${authUser}:${authPassword}`).toString('base64');

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  api = await startApiHarness(env, infra, { COMPUTE_CREATE_WAIT_SECONDS: 90 });
  nodeB = nodeBDocker();
  other = await createUserKey(infra.pool, `other-${tag}`, 'user', 'test');
  nodes.push(await startTestComputeNode(env, infra, { group: groupA, name: `${groupA}-a` }));
  nodes.push(await startTestComputeNode(env, infra, { group: groupB, name: `${groupB}-b`, docker: nodeB }));
  await request(api.app).put(`/api/v1/admin/resource-policies/${api.userId}`).set(admin()).send({ max_sessions: 10, resources: { cpu: '8', memory: '8G', gpu: '0' }, max_customized_images: 3 }).expect(200);
  await request(api.app).put(`/api/v1/admin/registries/${registries[0]}`).set(admin()).send({ address: authAddress, username: authUser, password: 'not-the-password' }).expect(201);
  await request(api.app).put(`/api/v1/admin/registries/${registries[1]}`).set(admin()).send({ address: authAddress, username: authUser, password: authPassword }).expect(201);
  const created = await createSession(groupA, 'python:3.11', '256M', api.userKey, { secret_env: { API_TOKEN: secretValue } });
  expect(created.body.status).toBe('RUNNING');
  sessionId = created.body.id as string;
}, 240_000);

afterAll(async () => {
  for (const id of sessions) await request(api.app).delete(`/api/v1/sessions/${id}?forced=true`).set(admin());
  await Promise.all(nodes.map((node) => node.stop()));
  for (const docker of [infra.docker, nodeB]) await removeComputeLeftovers(docker, infra.config.SESSIONFLOW_INSTANCE, sessions, []);
  const { rows } = await infra.pool.query<{ id: string; reference: string | null }>(
    'SELECT c.id, i.reference FROM compute_commits c LEFT JOIN compute_images i ON i.owner_id = c.owner_id AND i.name = c.image_name WHERE c.session_id = ANY($1::uuid[])', [sessions],
  );
  for (const row of rows) {
    const { repo, tag: commitTag } = commitImageTag(row.id);
    for (const docker of [infra.docker, nodeB]) {
      for (const reference of [`${repo}:${commitTag}`, ...(row.reference ? [row.reference] : [])]) await ignoreNotFound(docker.getImage(reference).remove({ force: true })).catch(() => undefined);
    }
  }
  for (const { address, reference } of pushed) await deleteFromRegistry(address, reference).catch(() => undefined);
  await infra.pool.query('DELETE FROM compute_sessions WHERE owner_id = ANY($1::uuid[])', [[api.userId, other.userId]]);
  await infra.pool.query('DELETE FROM compute_images WHERE owner_id = ANY($1::uuid[])', [[api.userId, other.userId]]);
  await infra.pool.query('DELETE FROM compute_registries WHERE name = ANY($1::text[])', [registries]);
  await infra.pool.query('DELETE FROM compute_nodes WHERE scaling_group = ANY($1::text[])', [[groupA, groupB]]);
  await infra.pool.query('DELETE FROM compute_scaling_groups WHERE name = ANY($1::text[])', [[groupA, groupB]]);
  await infra.pool.query('DELETE FROM users WHERE id = $1', [other.userId]);
  await api.stop();
  await infra.close();
  await env.teardown();
}, 120_000);

async function deleteFromRegistry(address: string, reference: string): Promise<void> {
  const auth: Record<string, string> = address === authAddress ? { Authorization: `Basic ${basic}` } : {};
  const path = reference.slice(address.length + 1);
  const colon = path.lastIndexOf(':');
  const repo = path.slice(0, colon);
  const head = await fetch(`http://${address}/v2/${repo}/manifests/${path.slice(colon + 1)}`, { method: 'HEAD', headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json', ...auth } });
  const digest = head.headers.get('docker-content-digest');
  if (digest) await fetch(`http://${address}/v2/${repo}/manifests/${digest}`, { method: 'DELETE', headers: auth });
}

describe('POST /api/v1/sessions/:id/commit', () => {
  it('commits the main kernel: finished, and the image is on the node (seed action 12, 23)', async () => {
    const started = await request(api.app).post(sessionPath(sessionId, 'commit')).set(user()).expect(202);
    expect(started.body).toEqual({ commit_id: expect.any(String), status: 'ongoing' });
    const seen = await untilEnded(sessionId, started.body.commit_id as string);
    const last = seen.at(-1)!;
    expect(last.status).toBe('finished');
    expect(last.progress.image_id).toMatch(/^sha256:/);
    const { repo, tag: commitTag } = commitImageTag(started.body.commit_id as string);
    const image = await imageOn(infra.docker, `${repo}:${commitTag}`);
    expect(image?.Id).toBe(last.progress.image_id);
    // secret_env is in neither the image's config nor the engine's record of the committed container.
    expect(JSON.stringify(image)).not.toContain(secretValue);
    expect(image?.Config.Env).toContain('API_TOKEN=');
    const latest = await request(api.app).get(sessionPath(sessionId, 'commit')).set(user()).expect(200);
    expect(latest.body.commit_id).toBe(started.body.commit_id);
  }, 180_000);

  it('answers 404 for another user\'s session, and changes nothing', async () => {
    for (const action of ['commit', 'convert']) {
      const res = await request(api.app).post(sessionPath(sessionId, action)).set(as(other.key)).send(action === 'convert' ? { image_name: 'theirs:v1' } : undefined);
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('SessionNotFound');
    }
    expect((await request(api.app).get(sessionPath(sessionId, 'commit')).set(as(other.key))).status).toBe(404);
  });
});

describe('POST /api/v1/sessions/:id/convert', () => {
  it('refuses a name that is not a name:tag reference with 400, and an unknown registry with 404 (nothing made)', async () => {
    for (const imageName of ['My-Env:v1', 'a..b:v1', 'no-tag', 'x:', '-lead:v1', 'a/:v1']) {
      const res = await request(api.app).post(sessionPath(sessionId, 'convert')).set(user()).send({ image_name: imageName });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('ValidationFailed');
    }
    const unknown = await request(api.app).post(sessionPath(sessionId, 'convert')).set(user()).send({ image_name: 'env:v1', registry: registries[2] });
    expect(unknown.status).toBe(404);
    const { rows } = await infra.pool.query('SELECT 1 FROM compute_commits WHERE session_id = $1 AND kind = \'convert\'', [sessionId]);
    expect(rows).toEqual([]);
  });

  it('converts to the local registry: pushed with progress, registered as mine, and a session of it on the other node has the first one\'s file (seed 10.1)', async () => {
    const marker = `made in ${sessionId}`;
    await execute(sessionId, { code: `open('marker.txt', 'w').write(${JSON.stringify(marker)})` });
    const imageName = `my-custom-env-${tag}:v1`;
    const started = await request(api.app).post(sessionPath(sessionId, 'convert')).set(user()).send({ image_name: imageName, registry: 'local' }).expect(202);
    const target = convertTarget(localAddress, api.userId, imageName);
    pushed.push({ address: localAddress, reference: target.reference });
    const seen = await untilEnded(sessionId, started.body.commit_id as string);
    const last = seen.at(-1)!;
    expect(last).toMatchObject({ status: 'finished', error: null });
    expect(last.progress.bytes_total).toBeGreaterThan(0);
    expect(last.progress.bytes_pushed).toBe(last.progress.bytes_total);
    expect(await manifestStatus(localAddress, target.reference)).toBe(200);
    // Pushed, then removed from node a (once the convert has answered): a session pulls it from the registry.
    expect(await eventually(async () => ((await imageOn(infra.docker, target.reference)) ? undefined : 'gone'), 30)).toBe('gone');

    const fromImage = await createSession(groupB, imageName);
    expect(fromImage.status).toBe(201);
    expect(fromImage.body.status).toBe('RUNNING');
    expect(await imageOn(nodeB, target.reference)).toBeDefined();
    const read = await execute(fromImage.body.id as string, { code: "open('marker.txt').read()" });
    expect(read.result).toBe(marker);

    // Another user's session cannot name it: images are scoped to their owner.
    const theirs = await createSession(groupB, imageName, '256M', other.key);
    expect(theirs.status).toBe(404);
    expect(theirs.body.code).toBe('ImageNotFound');
    await request(api.app).delete(`/api/v1/sessions/${fromImage.body.id as string}`).set(user()).expect(200);
  }, 300_000);

  it('fails with RegistryPushError naming the registry when its credentials are wrong, and leaves no local tag (seed 10.3)', async () => {
    const imageName = `denied-${tag}:v1`;
    const started = await request(api.app).post(sessionPath(sessionId, 'convert')).set(user()).send({ image_name: imageName, registry: registries[0] }).expect(202);
    const last = (await untilEnded(sessionId, started.body.commit_id as string)).at(-1)!;
    expect(last.status).toBe('failed');
    expect(last.error?.code).toBe('RegistryPushError');
    expect(last.error?.message).toContain(registries[0]);
    expect(last.error?.message).toMatch(/unauthori[sz]ed|authentication required|denied/i);
    const target = convertTarget(authAddress, api.userId, imageName);
    expect(await imageOn(infra.docker, target.reference)).toBeUndefined();
    const { repo, tag: commitTag } = commitImageTag(started.body.commit_id as string);
    expect(await imageOn(infra.docker, `${repo}:${commitTag}`)).toBeUndefined();
    const { rows } = await infra.pool.query('SELECT 1 FROM compute_images WHERE owner_id = $1 AND name = $2', [api.userId, imageName]);
    expect(rows).toEqual([]);
  }, 300_000);

  it('pushes to the registry that requires credentials when they are right, and another node pulls from it with them', async () => {
    const imageName = `authed-${tag}:v1`;
    const started = await request(api.app).post(sessionPath(sessionId, 'convert')).set(user()).send({ image_name: imageName, registry: registries[1] }).expect(202);
    const target = convertTarget(authAddress, api.userId, imageName);
    pushed.push({ address: authAddress, reference: target.reference });
    const last = (await untilEnded(sessionId, started.body.commit_id as string)).at(-1)!;
    expect(last).toMatchObject({ status: 'finished', error: null });
    expect(await manifestStatus(authAddress, target.reference)).toBe(401);
    expect(await manifestStatus(authAddress, target.reference, basic)).toBe(200);
    // The password is never in an answer.
    const shown = await request(api.app).get(`/api/v1/admin/registries/${registries[1]}`).set(admin()).expect(200);
    expect(JSON.stringify(shown.body)).not.toContain(authPassword);
    expect(shown.body).toMatchObject({ address: authAddress, username: authUser, has_password: true });

    // Node b pulls it with that registry's credentials (not those of the other registry at the same address).
    const fromImage = await createSession(groupB, imageName);
    expect([fromImage.status, fromImage.body.status]).toEqual([201, 'RUNNING']);
    expect(await imageOn(nodeB, target.reference)).toBeDefined();
    await request(api.app).delete(`/api/v1/sessions/${fromImage.body.id as string}`).set(user()).expect(200);
  }, 300_000);

  it('cancels a convert to a name already held mid-push: the commit is cancelled, nothing of it is left on the node or in the registry, and the image held before stays; one commit at a time meanwhile', async () => {
    const big = await createSession(groupA, 'python:3.11', '1G');
    expect(big.body.status).toBe('RUNNING');
    const id = big.body.id as string;
    await execute(id, { mode: 'batch', code: 'head -c 500M /dev/urandom > big && ls -l big' });
    // Converted by the test before: the owner's image under this name must outlive the cancel.
    const imageName = `my-custom-env-${tag}:v1`;
    const started = await request(api.app).post(sessionPath(id, 'convert')).set(user()).send({ image_name: imageName }).expect(202);
    const commitId = started.body.commit_id as string;
    const target = convertTarget(localAddress, api.userId, imageName);
    pushed.push({ address: localAddress, reference: target.reference });

    const second = await request(api.app).post(sessionPath(id, 'commit')).set(user());
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ code: 'InvalidSessionState', commit_id: commitId });

    const deadline = Date.now() + 240_000;
    let pushing: CommitView | undefined;
    while (!pushing && Date.now() < deadline) {
      const res = await request(api.app).get(sessionPath(id, `commits/${commitId}`)).set(user()).expect(200);
      if (res.body.progress.phase === 'pushing' && res.body.progress.bytes_pushed > 0) pushing = res.body as CommitView;
      expect(res.body.status).toBe('ongoing');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(pushing?.progress.bytes_pushed).toBeLessThan(pushing!.progress.bytes_total);
    const cancelled = await request(api.app).delete(sessionPath(id, `commits/${commitId}`)).set(user()).expect(200);
    expect(cancelled.body.status).toBe('cancelled');
    expect(await imageOn(infra.docker, target.reference)).toBeUndefined();
    const { repo, tag: commitTag } = commitImageTag(commitId);
    expect(await imageOn(infra.docker, `${repo}:${commitTag}`)).toBeUndefined();
    const staging = convertTarget(localAddress, api.userId, imageName, commitId).staging;
    expect(await imageOn(infra.docker, staging)).toBeUndefined();
    expect(await manifestStatus(localAddress, staging)).toBe(404);
    // The image held before is untouched: still in the registry, still registered.
    expect(await manifestStatus(localAddress, target.reference)).toBe(200);
    const { rows } = await infra.pool.query('SELECT reference FROM compute_images WHERE owner_id = $1 AND name = $2', [api.userId, imageName]);
    expect(rows).toEqual([{ reference: target.reference }]);
    await request(api.app).delete(`/api/v1/sessions/${id}`).set(user()).expect(200);
  }, 400_000);

  it('refuses a convert past max_customized_images with 403 QuotaExceeded, and writes no commit', async () => {
    // The policy allows 3: the local and the authed images are held; a third fits, a fourth does not.
    await infra.pool.query('INSERT INTO compute_images (name, reference, owner_id) VALUES ($1, $2, $3)', [`held-${tag}:v1`, 'nowhere/held:v1', api.userId]);
    const res = await request(api.app).post(sessionPath(sessionId, 'convert')).set(user()).send({ image_name: `one-too-many-${tag}:v1` });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'QuotaExceeded', limit: 'customized_images', available: 0 });
    const { rows } = await infra.pool.query('SELECT 1 FROM compute_commits WHERE image_name = $1', [`one-too-many-${tag}:v1`]);
    expect(rows).toEqual([]);
    // The admin sees the limit and what is held.
    const policy = await request(api.app).get(`/api/v1/admin/resource-policies/${api.userId}`).set(admin()).expect(200);
    expect(policy.body).toMatchObject({ max_customized_images: 3, usage: { customized_images: 3 } });
  });

  it('lists a user\'s own images beside everyone\'s, and removes one of them from the registry too, freeing its place in the quota', async () => {
    const mine = `my-custom-env-${tag}:v1`;
    const listed = await request(api.app).get('/api/v1/images').set(user()).expect(200);
    const items = listed.body.items as { name: string; own: boolean }[];
    expect(items.filter((image) => image.own).map((image) => image.name).sort()).toEqual([`authed-${tag}:v1`, `held-${tag}:v1`, mine].sort());
    expect(items.find((image) => image.name === 'python:3.11')).toMatchObject({ own: false });
    // Another user sees none of them, and cannot remove them.
    const theirs = await request(api.app).get('/api/v1/images').set(as(other.key)).expect(200);
    expect((theirs.body.items as { own: boolean }[]).some((image) => image.own)).toBe(false);
    expect((await request(api.app).delete(`/api/v1/images/${encodeURIComponent(mine)}`).set(as(other.key)).expect(404)).body.code).toBe('ImageNotFound');

    const target = convertTarget(localAddress, api.userId, mine);
    expect(await manifestStatus(localAddress, target.reference)).toBe(200);
    const removed = await request(api.app).delete(`/api/v1/images/${encodeURIComponent(mine)}`).set(user()).expect(200);
    expect(removed.body).toEqual({ name: mine, removed_from_registry: true });
    expect(await manifestStatus(localAddress, target.reference)).toBe(404);
    const policy = await request(api.app).get(`/api/v1/admin/resource-policies/${api.userId}`).set(admin()).expect(200);
    expect(policy.body.usage.customized_images).toBe(2);
    // An admin's image is not a user's to remove.
    expect((await request(api.app).delete(`/api/v1/images/${encodeURIComponent('python:3.11')}`).set(user()).expect(404)).body.code).toBe('ImageNotFound');
  });
});
