import { ApplicationFailure } from '@temporalio/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { createComputeControlActivities } from '../../../activities/compute/control';
import { createComputeStore, type ComputeStore, type ComputeStoreSettings } from '../../../activities/compute/store';
import { computeSecretsSealer, createSecretStore } from '../../../activities/compute/secretStore';
import { createUserKey } from '../../../api/platform/auth';
import { createSessionBody } from '../../../domain/compute/params';
import { createPool, type Pool } from '../../../platform/database';
import { openInfra, type Infra } from '../../helpers/infra';

/**
 * The compute control plane's SQL against the real PostgreSQL: admission under concurrency,
 * quotas, names, scheduling races, transitions, dependencies. Node rows are written here
 * directly (in production the node workers register them).
 */
let infra: Infra;
let otherWorker: Pool;
let store: ComputeStore;
let otherStore: ComputeStore;
const tag = randomUUID().slice(0, 8);
const group = `it-${tag}`;
const image = `it-python-${tag}:3.11`;
const owners: string[] = [];
const nodes: string[] = [];
const G = 2 ** 30;

const settings: ComputeStoreSettings = {
  instance: 'it', defaultPolicy: { maxSessions: 8, resources: { cpuMillis: 64_000, memoryBytes: 256 * G, gpu: 0 } },
  sealer: computeSecretsSealer(randomBytes(32).toString('base64')), nodeDeadAfterSeconds: 30,
};

beforeAll(async () => {
  infra = openInfra();
  otherWorker = createPool(infra.config.DATABASE_URL, 8);
  store = createComputeStore(infra.pool, settings);
  otherStore = createComputeStore(otherWorker, settings);
  await store.createScalingGroup(group, 'integration test');
  await store.upsertImage({ name: image, reference: '127.0.0.1:5000/sessionflow/kernel-python:bookworm', resources: { cpuMillis: 1000, memoryBytes: G, gpu: 0 } });
  await addNode('a', 8, 16);
  await addNode('b', 8, 16);
});
afterAll(async () => {
  await infra.pool.query('DELETE FROM compute_sessions WHERE owner_id = ANY($1::uuid[])', [owners]);
  await infra.pool.query('DELETE FROM users WHERE id = ANY($1::uuid[])', [owners]);
  await infra.pool.query('DELETE FROM compute_nodes WHERE name = ANY($1::text[])', [nodes]);
  await infra.pool.query('DELETE FROM compute_scaling_groups WHERE name LIKE $1', [`it-${tag}%`]);
  await store.deleteImage(image);
  await otherWorker.end();
  await infra.close();
});

async function addNode(suffix: string, cores: number, gib: number, options: { group?: string; heartbeatAgoSeconds?: number } = {}): Promise<string> {
  const name = `it-${tag}-${suffix}`;
  nodes.push(name);
  await infra.pool.query(
    `INSERT INTO compute_nodes (name, scaling_group, task_queue, cpu_millis, memory_bytes, gpu, last_heartbeat_at)
     VALUES ($1, $2, $3, $4, $5, 0, now() - make_interval(secs => $6))`,
    [name, options.group ?? group, `node/${name}`, cores * 1000, gib * G, options.heartbeatAgoSeconds ?? 0],
  );
  return name;
}

async function newOwner(): Promise<string> {
  const { userId } = await createUserKey(infra.pool, `compute-${randomUUID().slice(0, 8)}`, 'user', 'test');
  owners.push(userId);
  return userId;
}

const params = (body: Record<string, unknown> = {}) => createSessionBody.parse({ image, scaling_group: group, ...body });

async function failureOf(work: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await work;
  } catch (err) {
    if (err instanceof ApplicationFailure) return err;
    throw err;
  }
  throw new Error('expected a named failure');
}

const sessionCount = async (ownerId: string) => (await infra.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM compute_sessions WHERE owner_id = $1', [ownerId])).rows[0]!.n;

describe('admission', () => {
  it('admits exactly max_sessions of 20 simultaneous creates from two workers, refusing the rest naming sessions', async () => {
    const ownerId = await newOwner();
    await store.setPolicy(ownerId, { maxSessions: 3, resources: { cpuMillis: 100_000, memoryBytes: 100 * G, gpu: 0 } });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 ? store : otherStore).admitSession({ ownerId, params: params() })));
    const admitted = results.filter((r) => r.status === 'fulfilled');
    expect(admitted).toHaveLength(3);
    for (const refused of results.filter((r) => r.status === 'rejected')) {
      expect(refused.reason).toMatchObject({ type: 'QuotaExceeded', details: [{ limit: 'sessions', requested: 1, available: 0 }] });
    }
    expect(await sessionCount(ownerId)).toBe(3);
  });

  it('writes the session, its kernels, dependencies and first history row, and returns the workflow input', async () => {
    const ownerId = await newOwner();
    const first = await store.admitSession({ ownerId, params: params() });
    const input = await store.admitSession({ ownerId, params: params({ session_name: 'cluster', cluster_size: 3, resources: { cpu: '0.5' }, dependencies: [first.sessionId], env: { A: '1' }, vfolders: ['home'] }) });
    expect(input).toMatchObject({
      ownerId, name: 'cluster', image, imageReference: '127.0.0.1:5000/sessionflow/kernel-python:bookworm', scalingGroup: group, clusterMode: 'single-node',
      resources: { cpuMillis: 500, memoryBytes: G, gpu: 0 }, env: { A: '1' }, vfolders: ['home'], dependencies: [first.sessionId], priority: 0,
    });
    expect(input.kernels.map((k) => [k.role, k.idx, k.hostname])).toEqual([['main', 1, 'main1'], ['sub', 1, 'sub1'], ['sub', 2, 'sub2']]);
    expect(first.name).toMatch(new RegExp(`^it-python-${tag}-[0-9a-f]{8}$`));
    const detail = await store.session(input.sessionId, ownerId);
    expect(detail).toMatchObject({ status: 'PENDING', cluster_size: 3, kernels: expect.arrayContaining([expect.objectContaining({ hostname: 'sub2', node: null, status: 'PENDING' })]) });
    expect(await store.statusHistory(input.sessionId, ownerId)).toEqual([{ seq: 1, from_status: null, to_status: 'PENDING', reason: 'admitted', details: null, at: expect.any(Date) }]);
    expect((await store.vfolders(ownerId)).map((v) => v.volume)).toEqual([`sf-it-vf-${ownerId}-home`]);
    // The same id again (a retried create) is the same session, not a second one.
    expect(await store.admitSession({ ownerId, sessionId: input.sessionId, params: params({ session_name: 'cluster' }) })).toEqual(input);
    expect(await sessionCount(ownerId)).toBe(2);
  });

  it('refuses cpu and memory beyond the policy with the asked and free amounts, counting cluster size', async () => {
    const ownerId = await newOwner();
    await store.setPolicy(ownerId, { maxSessions: 10, resources: { cpuMillis: 4000, memoryBytes: 8 * G, gpu: 0 } });
    await store.admitSession({ ownerId, params: params({ cluster_size: 2 }) });
    const cpu = await failureOf(store.admitSession({ ownerId, params: params({ resources: { cpu: '3' } }) }));
    expect(cpu).toMatchObject({ type: 'QuotaExceeded', details: [{ limit: 'cpu', requested: '3', available: '2' }] });
    const memory = await failureOf(store.admitSession({ ownerId, params: params({ resources: { memory: '6.5G' } }) }));
    expect(memory).toMatchObject({ type: 'QuotaExceeded', details: [{ limit: 'memory', requested: '6656M', available: '6G' }] });
    const gpu = await failureOf(store.admitSession({ ownerId, params: params({ resources: { gpu: '1' } }) }));
    expect(gpu).toMatchObject({ type: 'QuotaExceeded', details: [{ limit: 'gpu', requested: '1', available: '0' }] });
    // Seed 1.2: far beyond any quota is QuotaExceeded (checked before the nodes).
    const huge = await failureOf(store.admitSession({ ownerId, params: params({ resources: { cpu: '1000', memory: '10TB' } }) }));
    expect(huge).toMatchObject({ type: 'QuotaExceeded', details: [{ limit: 'cpu', requested: '1000' }] });
    expect(await sessionCount(ownerId)).toBe(1);
    expect(await store.usage(ownerId)).toEqual({ sessions: 1, resources: { cpuMillis: 2000, memoryBytes: 2 * G, gpu: 0 } });
  });

  it('refuses a name taken among live sessions only: an ERROR session frees its name', async () => {
    const ownerId = await newOwner();
    const first = await store.admitSession({ ownerId, params: params({ session_name: 'my-tf-session' }) });
    expect(await failureOf(store.admitSession({ ownerId, params: params({ session_name: 'my-tf-session' }) }))).toMatchObject({ type: 'SessionNameTaken', details: [{ name: 'my-tf-session' }] });
    // Another owner may use it.
    await store.admitSession({ ownerId: await newOwner(), params: params({ session_name: 'my-tf-session' }) });
    await store.markStartFailed(first.sessionId, 'the workflow could not start');
    expect((await store.session(first.sessionId, ownerId))).toMatchObject({ status: 'ERROR', status_reason: 'the workflow could not start', terminated_at: expect.any(Date) });
    const again = await store.admitSession({ ownerId, params: params({ session_name: 'my-tf-session' }) });
    expect(again.name).toBe('my-tf-session');
  });

  it('refuses an unknown image, an unknown or foreign dependency and an unknown scaling group, writing nothing', async () => {
    const ownerId = await newOwner();
    expect(await failureOf(store.admitSession({ ownerId, params: params({ image: 'non-existent:latest' }) }))).toMatchObject({ type: 'ImageNotFound', details: [{ image: 'non-existent:latest' }] });
    const foreign = await store.admitSession({ ownerId: await newOwner(), params: params() });
    expect(await failureOf(store.admitSession({ ownerId, params: params({ dependencies: [foreign.sessionId] }) }))).toMatchObject({ type: 'SessionNotFound', details: [{ dependency: foreign.sessionId }] });
    expect(await failureOf(store.admitSession({ ownerId, params: params({ scaling_group: `it-${tag}-none` }) }))).toMatchObject({ type: 'ValidationFailed' });
    expect(await sessionCount(ownerId)).toBe(0);
  });

  it('refuses as InsufficientResources what no live node of the group could ever hold', async () => {
    const ownerId = await newOwner();
    await store.setPolicy(ownerId, { maxSessions: 10, resources: { cpuMillis: 1_000_000, memoryBytes: 1000 * G, gpu: 10 } });
    expect(await failureOf(store.admitSession({ ownerId, params: params({ resources: { cpu: '9' } }) }))).toMatchObject({ type: 'InsufficientResources', details: [{ scaling_group: group }] });
    // Seed 3.3: a multi-node cluster larger than the group's nodes.
    expect(await failureOf(store.admitSession({ ownerId, params: params({ cluster_mode: 'multi-node', cluster_size: 10 }) }))).toMatchObject({ type: 'InsufficientResources' });
    // A dead node's capacity does not count at admission.
    const lonely = `it-${tag}-lonely`;
    await store.createScalingGroup(lonely, '');
    await addNode('dead', 64, 64, { group: lonely, heartbeatAgoSeconds: 120 });
    expect(await failureOf(store.admitSession({ ownerId, params: params({ scaling_group: lonely }) }))).toMatchObject({ type: 'InsufficientResources' });
    expect(await sessionCount(ownerId)).toBe(0);
  });

  it('seals secret_env under the session\'s secret id and keeps only its names in the row', async () => {
    const ownerId = await newOwner();
    const input = await store.admitSession({ ownerId, params: params({ secret_env: { API_KEY: 'secret-value' }, env: { PYTHONPATH: '/app' } }) });
    expect(input.secretId).toEqual(expect.any(String));
    expect(JSON.stringify(input)).not.toContain('secret-value');
    const { rows: [row] } = await infra.pool.query<{ params: unknown; sealed: Buffer }>('SELECT s.params, c.sealed FROM compute_sessions s JOIN compute_secrets c ON c.id = s.secret_id WHERE s.id = $1', [input.sessionId]);
    expect(JSON.stringify(row!.params)).not.toContain('secret-value');
    expect(row!.sealed.toString('latin1')).not.toContain('secret-value');
    expect(JSON.parse((await createSecretStore(infra.pool, settings.sealer).open(input.secretId!))!)).toEqual({ API_KEY: 'secret-value' });
    expect((await store.session(input.sessionId, ownerId))!.params.secret_env_names).toEqual(['API_KEY']);
  });
});

describe('scheduling', () => {
  it('places one of two sessions that each need most of one node, and the other waits until the first ends', async () => {
    const solo = `it-${tag}-solo`;
    await store.createScalingGroup(solo, '');
    const node = await addNode('solo', 4, 8, { group: solo });
    const ownerId = await newOwner();
    const [one, two] = await Promise.all([1, 2].map(() => store.admitSession({ ownerId, params: params({ scaling_group: solo, resources: { cpu: '3' } }) })));
    const results = await Promise.all([store.scheduleSession(one!.sessionId), otherStore.scheduleSession(two!.sessionId)]);
    const placed = results.filter((r) => 'placed' in r);
    expect(placed).toHaveLength(1);
    expect(results.filter((r) => 'wait' in r)).toHaveLength(1);
    const [winner, loser] = 'placed' in results[0]! ? [one!, two!] : [two!, one!];
    expect(placed[0]).toEqual({ placed: [{ ...winner.kernels[0], node, taskQueue: `node/${node}` }] });

    // A retried scheduling gets the same nodes back.
    expect(await store.scheduleSession(winner.sessionId)).toEqual(placed[0]);
    expect((await store.nodes()).find((n) => n.name === node)).toMatchObject({ alive: true, used: { cpuMillis: 3000, memoryBytes: G, gpu: 0 } });

    await store.recordTransition({ sessionId: winner.sessionId, from: 'PENDING', to: 'SCHEDULED' });
    await store.recordTransition({ sessionId: winner.sessionId, from: 'SCHEDULED', to: 'TERMINATING' });
    expect(await store.scheduleSession(loser.sessionId)).toHaveProperty('wait');
    await store.recordTransition({ sessionId: winner.sessionId, from: 'TERMINATING', to: 'TERMINATED' });
    expect(await store.sessionsToWake(winner.sessionId)).toEqual([loser.sessionId]);
    expect(await store.scheduleSession(loser.sessionId)).toEqual({ placed: [expect.objectContaining({ node })] });
  });

  it('spreads a multi-node cluster over distinct nodes, skips dead and unschedulable ones, and refuses what never fits', async () => {
    const spread = `it-${tag}-spread`;
    await store.createScalingGroup(spread, '');
    const [x, y] = [await addNode('x', 4, 8, { group: spread }), await addNode('y', 2, 4, { group: spread })];
    const dead = await addNode('z', 16, 32, { group: spread, heartbeatAgoSeconds: 300 });
    const ownerId = await newOwner();
    const pair = await store.admitSession({ ownerId, params: params({ scaling_group: spread, cluster_mode: 'multi-node', cluster_size: 2 }) });
    const result = await store.scheduleSession(pair.sessionId);
    expect('placed' in result && result.placed.map((k) => [k.hostname, k.node])).toEqual([['main1', x], ['sub1', y]]);

    await store.setSchedulable(y, false);
    const single = await store.admitSession({ ownerId, params: params({ scaling_group: spread, resources: { cpu: '2' } }) });
    expect(await store.scheduleSession(single.sessionId)).toEqual({ placed: [expect.objectContaining({ node: x })] });
    // Only the dead node could take 8 cores: wait for it rather than fail.
    const big = await store.admitSession({ ownerId, params: params({ scaling_group: spread, resources: { cpu: '4' } }) });
    expect(await store.scheduleSession(big.sessionId)).toHaveProperty('wait');
    await infra.pool.query('DELETE FROM compute_nodes WHERE name = $1', [dead]);
    expect(await failureOf(store.scheduleSession(big.sessionId).then(async () => {
      await infra.pool.query('UPDATE compute_nodes SET cpu_millis = 1000 WHERE name = $1', [x]);
      return store.scheduleSession(big.sessionId);
    }))).toMatchObject({ type: 'InsufficientResources' });
  });
});

describe('transitions', () => {
  it('record status, reason, times and history once, and refuse what the map does not allow', async () => {
    const ownerId = await newOwner();
    const { sessionId } = await store.admitSession({ ownerId, params: params() });
    const path = [['PENDING', 'SCHEDULED'], ['SCHEDULED', 'PREPARING'], ['PREPARING', 'PULLING'], ['PULLING', 'PREPARED'], ['PREPARED', 'CREATING'], ['CREATING', 'RUNNING']] as const;
    for (const [from, to] of path) {
      expect(await store.recordTransition({ sessionId, from, to })).toEqual({ changed: true, status: to });
      // The same transition again (a retried activity) writes nothing.
      expect(await store.recordTransition({ sessionId, from, to })).toEqual({ changed: false, status: to });
    }
    const refused = await failureOf(store.recordTransition({ sessionId, from: 'RUNNING', to: 'PREPARING' }));
    expect(refused).toMatchObject({ type: 'InvalidSessionState', details: [{ current_status: 'RUNNING' }] });
    await store.recordTransition({ sessionId, from: 'RUNNING', to: 'RESTARTING', reason: 'restart asked' });
    await store.recordTransition({ sessionId, from: 'RESTARTING', to: 'RUNNING' });
    await store.recordTransition({ sessionId, from: 'RUNNING', to: 'TERMINATING', reason: 'destroyed', at: '2030-01-01T00:00:00Z' });
    await store.recordTransition({ sessionId, from: 'TERMINATING', to: 'TERMINATED', reason: 'destroyed', at: '2030-01-01T00:00:01Z' });
    const history = (await store.statusHistory(sessionId, ownerId))!;
    expect(history.map((h) => [h.seq, h.from_status, h.to_status])).toEqual([
      [1, null, 'PENDING'], ...path.map(([from, to], i) => [i + 2, from, to]),
      [8, 'RUNNING', 'RESTARTING'], [9, 'RESTARTING', 'RUNNING'], [10, 'RUNNING', 'TERMINATING'], [11, 'TERMINATING', 'TERMINATED'],
    ]);
    const detail = (await store.session(sessionId, ownerId))!;
    expect(detail).toMatchObject({ status: 'TERMINATED', status_reason: 'destroyed', terminated_at: new Date('2030-01-01T00:00:01Z') });
    expect(detail.started_at!.getTime()).toBeLessThan(detail.terminated_at!.getTime());
    expect(detail.kernels.map((k) => k.status)).toEqual(['TERMINATED']);
  });

  it('renames and modifies, refusing a name another live session holds', async () => {
    const ownerId = await newOwner();
    const a = await store.admitSession({ ownerId, params: params({ session_name: 'alpha', idle_timeout: 60 }) });
    await store.admitSession({ ownerId, params: params({ session_name: 'beta' }) });
    expect(await failureOf(store.modifySession(a.sessionId, { name: 'beta' }))).toMatchObject({ type: 'SessionNameTaken' });
    await store.modifySession(a.sessionId, { name: 'gamma' });
    await store.modifySession(a.sessionId, { priority: 7, idleTimeoutSeconds: 0 });
    const detail = (await store.session(a.sessionId, ownerId))!;
    expect(detail).toMatchObject({ name: 'gamma', priority: 7 });
    expect(detail.params.idle_timeout).toBeUndefined();
    await store.modifySession(a.sessionId, { idleTimeoutSeconds: 90 });
    expect((await store.sessionInput(a.sessionId))!.idleTimeoutSeconds).toBe(90);
  });
});

describe('dependencies', () => {
  it('wait for every dependency to terminate, fail on one that errored, and form a recursive graph', async () => {
    const ownerId = await newOwner();
    const a = await store.admitSession({ ownerId, params: params({ session_name: 'a' }) });
    const b = await store.admitSession({ ownerId, params: params({ session_name: 'b', dependencies: [a.sessionId] }) });
    const c = await store.admitSession({ ownerId, params: params({ session_name: 'c', dependencies: [b.sessionId, a.sessionId] }) });
    expect(await store.dependencyOutcome(b.sessionId)).toBe('waiting');
    expect(await store.dependencyOutcome(a.sessionId)).toBe('ready');
    expect(await store.sessionsToWake(a.sessionId)).toEqual(expect.arrayContaining([b.sessionId, c.sessionId]));

    await store.recordTransition({ sessionId: a.sessionId, from: 'PENDING', to: 'TERMINATING' });
    await store.recordTransition({ sessionId: a.sessionId, from: 'TERMINATING', to: 'TERMINATED' });
    expect(await store.dependencyOutcome(b.sessionId)).toBe('ready');
    await store.recordTransition({ sessionId: b.sessionId, from: 'PENDING', to: 'ERROR', reason: 'bootstrap failed' });
    expect(await store.dependencyOutcome(c.sessionId)).toEqual({ failed: b.sessionId, status: 'ERROR' });

    const graph = (await store.dependencyGraph(c.sessionId, ownerId))!;
    expect(graph.root).toBe(c.sessionId);
    expect(graph.nodes.map((n) => [n.name, n.status])).toEqual(expect.arrayContaining([['c', 'PENDING'], ['b', 'ERROR'], ['a', 'TERMINATED']]));
    expect(graph.nodes).toHaveLength(3);
    expect(graph.edges).toEqual(expect.arrayContaining([
      { session: c.sessionId, depends_on: b.sessionId }, { session: c.sessionId, depends_on: a.sessionId }, { session: b.sessionId, depends_on: a.sessionId },
    ]));
    expect(graph.edges).toHaveLength(3);
    expect(await store.dependencyGraph(c.sessionId, await newOwner())).toBeUndefined();
  });
});

describe('reads and the reconciler\'s view', () => {
  it('match sessions by name or id prefix with pagination, owner scoped', async () => {
    const ownerId = await newOwner();
    const made = [];
    for (const name of ['train-1', 'train-2', 'train-3', 'eval-1']) made.push(await store.admitSession({ ownerId, params: params({ session_name: name }) }));
    const page1 = await store.listSessions({ owner: ownerId, q: 'train', page: 1, pageSize: 2 });
    expect(page1.total).toBe(3);
    expect(page1.rows.map((r) => r.name)).toEqual(['train-3', 'train-2']);
    expect((await store.listSessions({ owner: ownerId, q: 'train', page: 2, pageSize: 2 })).rows.map((r) => r.name)).toEqual(['train-1']);
    expect((await store.listSessions({ owner: ownerId, q: made[3]!.sessionId.slice(0, 8).toUpperCase(), page: 1, pageSize: 10 })).rows.map((r) => r.name)).toEqual(['eval-1']);
    expect((await store.listSessions({ owner: ownerId, q: 'train_', page: 1, pageSize: 10 })).total).toBe(0);
    expect((await store.listSessions({ owner: await newOwner(), q: 'train', page: 1, pageSize: 10 })).total).toBe(0);
    expect((await store.listSessions({ owner: ownerId, status: 'RUNNING', page: 1, pageSize: 10 })).total).toBe(0);
  });

  it('shows the reconciler live sessions with their kernels\' nodes and liveness, and PENDING ones past max_wait', async () => {
    const ownerId = await newOwner();
    const late = await store.admitSession({ ownerId, params: params({ max_wait: 1 }), now: Date.now() - 5000 });
    const placed = await store.admitSession({ ownerId, params: params() });
    await store.scheduleSession(placed.sessionId);
    await store.setKernelContainer(placed.kernels[0]!.kernelId, 'c0ffee');
    const checks = await store.sessionsToCheck();
    expect(checks.find((s) => s.sessionId === late.sessionId)).toMatchObject({ status: 'PENDING', pendingExpired: true, kernels: [{ node: null, nodeAlive: false }] });
    expect(checks.find((s) => s.sessionId === placed.sessionId)).toMatchObject({ pendingExpired: false, kernels: [{ containerId: 'c0ffee', nodeAlive: true, taskQueue: expect.stringMatching(/^node\//) }] });
    await store.clearPlacement(placed.sessionId);
    expect((await store.session(placed.sessionId, ownerId))!.kernels[0]).toMatchObject({ node: null, container_id: null });
  });
});

describe('the control activities', () => {
  it('schedule, record, set containers, clear placement and answer the workflow\'s questions through the store, retry-safe', async () => {
    const activities = createComputeControlActivities({ pool: infra.pool, computeControl: settings });
    const ownerId = await newOwner();
    const dependency = await store.admitSession({ ownerId, params: params() });
    const { sessionId, kernels } = await store.admitSession({ ownerId, params: params({ dependencies: [dependency.sessionId], session_name: 'via-activities' }) });
    expect(await activities.computeDependencyOutcome({ sessionId })).toBe('waiting');
    const placed = await activities.scheduleComputeSession({ sessionId });
    expect(await activities.scheduleComputeSession({ sessionId })).toEqual(placed);
    expect(await activities.recordComputeTransition({ sessionId, from: 'PENDING', to: 'SCHEDULED' })).toEqual({ changed: true, status: 'SCHEDULED' });
    expect(await activities.recordComputeTransition({ sessionId, from: 'PENDING', to: 'SCHEDULED' })).toEqual({ changed: false, status: 'SCHEDULED' });
    await activities.setComputeKernelContainer({ kernelId: kernels[0]!.kernelId, containerId: 'abc123' });
    await activities.modifyComputeSession({ sessionId, change: { name: 'renamed' } });
    await activities.modifyComputeSession({ sessionId, change: { priority: 3 } });
    expect((await activities.computeSessionsToCheck()).find((s) => s.sessionId === sessionId)!.kernels[0]).toMatchObject({ containerId: 'abc123', nodeAlive: true });
    await activities.recordComputeTransition({ sessionId, from: 'SCHEDULED', to: 'PENDING', reason: 'node lost' });
    await activities.clearComputePlacement({ sessionId });
    expect(await store.session(sessionId, ownerId)).toMatchObject({ name: 'renamed', priority: 3, status: 'PENDING', kernels: [{ node: null, container_id: null }] });
    expect(await activities.computeSessionsToWake({ sessionId: dependency.sessionId })).toContain(sessionId);
  });
});
