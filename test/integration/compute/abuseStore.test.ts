import { randomBytes, randomUUID } from 'node:crypto';
import { createAbuseStore, type AbuseStore } from '../../../activities/compute/abuseStore';
import { computeSecretsSealer } from '../../../activities/compute/secretStore';
import { createComputeStore, type ComputeStore, type ComputeStoreSettings } from '../../../activities/compute/store';
import { createUserKey } from '../../../api/platform/auth';
import type { KernelUsage } from '../../../domain/compute/abuse';
import { createSessionBody } from '../../../domain/compute/params';
import type { ComputeStatus } from '../../../domain/compute/status';
import { openInfra, type Infra } from '../../helpers/infra';

/**
 * The reconciler's looks for abuse against the real PostgreSQL: consecutive abusing looks
 * counted across looks, a look applied twice (a retried activity) counted once, the owner's
 * action (warn written on the session, terminate handed back), sessions not RUNNING left alone.
 */
let infra: Infra;
let store: ComputeStore;
let abuse: AbuseStore;
let ownerId: string;
const tag = randomUUID().slice(0, 8);
const group = `it-ab-${tag}`;
const image = `it-ab-${tag}:3.11`;
const G = 2 ** 30;

// No COMPUTE_DEFAULT_ABUSE_* here: the domain's defaults (80/95/95, warn) apply.
const settings: ComputeStoreSettings = {
  instance: 'it', defaultPolicy: { maxSessions: 8, resources: { cpuMillis: 64_000, memoryBytes: 256 * G, gpu: 0 } },
  sealer: computeSecretsSealer(randomBytes(32).toString('base64')), nodeDeadAfterSeconds: 30,
};

const busy: KernelUsage = { cpuCores: 0.99, memoryBytes: 30 * 2 ** 20, memoryLimitBytes: null, pids: 40, pidsLimit: null, sampleSeconds: 1 };
const idle: KernelUsage = { ...busy, cpuCores: 0.01 };

beforeAll(async () => {
  infra = openInfra();
  store = createComputeStore(infra.pool, settings);
  abuse = createAbuseStore(infra.pool, settings);
  await store.createScalingGroup(group, 'integration test');
  await store.upsertImage({ name: image, reference: '127.0.0.1:5000/sessionflow/kernel-python:bookworm', resources: { cpuMillis: 1000, memoryBytes: G, gpu: 0 } });
  await infra.pool.query('INSERT INTO compute_nodes (name, scaling_group, task_queue, cpu_millis, memory_bytes) VALUES ($1, $2, $3, 8000, $4)', [`${group}-a`, group, `node/${group}-a`, 16 * G]);
  ({ userId: ownerId } = await createUserKey(infra.pool, `abuse-${tag}`, 'user', 'test'));
});

afterAll(async () => {
  await infra.pool.query('DELETE FROM compute_sessions WHERE owner_id = $1', [ownerId]);
  await infra.pool.query('DELETE FROM users WHERE id = $1', [ownerId]);
  await infra.pool.query('DELETE FROM compute_nodes WHERE scaling_group = $1', [group]);
  await infra.pool.query('DELETE FROM compute_scaling_groups WHERE name = $1', [group]);
  await store.deleteImage(image);
  await infra.close();
});

/** A session of one kernel (1 cpu), taken through its statuses as its workflow would. */
async function session(until: ComputeStatus = 'RUNNING'): Promise<{ sessionId: string; kernelId: string }> {
  const input = await store.admitSession({ ownerId, params: createSessionBody.parse({ image, scaling_group: group, resources: { cpu: '1', memory: '1G' } }) });
  const path: ComputeStatus[] = ['PENDING', 'SCHEDULED', 'PREPARING', 'PULLING', 'PREPARED', 'CREATING', 'RUNNING', 'TERMINATING', 'TERMINATED'];
  for (let i = 1; i <= path.indexOf(until); i++) await store.recordTransition({ sessionId: input.sessionId, from: path[i - 1]!, to: path[i]! });
  return { sessionId: input.sessionId, kernelId: input.kernels[0]!.kernelId };
}

const looksOf = async (kernelId: string) => (await infra.pool.query<{ abusing_looks: number; verdict: string }>('SELECT abusing_looks, verdict FROM compute_kernel_abuse WHERE kernel_id = $1', [kernelId])).rows[0];
const warningOf = async (sessionId: string) => (await store.session(sessionId, undefined))!.abuse_warning;

describe('a look for abuse', () => {
  it('acts at the second consecutive abusing look, counts a look applied again once, and starts again after a calm one', async () => {
    const { sessionId, kernelId } = await session();
    const first = await abuse.recordLook(`look-1-${tag}`, [{ kernelId, usage: busy }]);
    expect(first).toEqual({ kernels: 1, abusing: 1, warned: [], terminate: [] });
    // The same look again (its activity retried after the commit): still one look.
    expect(await abuse.recordLook(`look-1-${tag}`, [{ kernelId, usage: busy }])).toEqual(first);
    expect(await looksOf(kernelId)).toEqual({ abusing_looks: 1, verdict: 'abusing' });
    expect(await warningOf(sessionId)).toBeNull();

    // The default action is warn: written on the session, nothing handed back.
    const second = await abuse.recordLook(`look-2-${tag}`, [{ kernelId, usage: busy }]);
    expect(second).toEqual({ kernels: 1, abusing: 1, warned: [sessionId], terminate: [] });
    expect(await warningOf(sessionId)).toMatchObject({
      action: 'warn', looks: 2, look_id: `look-2-${tag}`, kernels: [{ kernel_id: kernelId, hostname: 'main1', status: 'abusing', cpu: { percent: 99, abusing_percent: 95 } }],
      message: 'abuse warning after 2 consecutive looks — kernel main1: cpu 99% of 1 cores ≥ 95%',
    });
    expect((await abuse.recordLook(`look-2-${tag}`, [{ kernelId, usage: busy }])).warned).toEqual([sessionId]);
    expect(await looksOf(kernelId)).toEqual({ abusing_looks: 2, verdict: 'abusing' });

    // Calm: the count starts again, the warning stays as a record.
    expect(await abuse.recordLook(`look-3-${tag}`, [{ kernelId, usage: idle }])).toEqual({ kernels: 1, abusing: 0, warned: [], terminate: [] });
    expect(await looksOf(kernelId)).toEqual({ abusing_looks: 0, verdict: 'ok' });
    expect(await warningOf(sessionId)).toMatchObject({ looks: 2 });
    expect((await abuse.recordLook(`look-4-${tag}`, [{ kernelId, usage: busy }])).warned).toEqual([]);
  });

  it('hands a session back to be ended when its owner\'s action is terminate, judged by the owner\'s thresholds', async () => {
    await store.setPolicy(ownerId, { maxSessions: 8, resources: { cpuMillis: 64_000, memoryBytes: 256 * G, gpu: 0 }, abuse: { cpuPercent: 50, cpuWarningPercent: 20, action: 'terminate' } });
    try {
      const { sessionId, kernelId } = await session();
      const half: KernelUsage = { ...busy, cpuCores: 0.6 };
      expect((await abuse.recordLook(`t-1-${tag}`, [{ kernelId, usage: half }])).terminate).toEqual([]);
      const second = await abuse.recordLook(`t-2-${tag}`, [{ kernelId, usage: half }]);
      expect(second.warned).toEqual([]);
      expect(second.terminate).toEqual([{
        sessionId,
        finding: { action: 'terminate', looks: 2, kernels: [expect.objectContaining({ kernel_id: kernelId, hostname: 'main1', status: 'abusing', reasons: ['cpu 60% of 1 cores ≥ 50%'] })] },
      }]);
      expect(await warningOf(sessionId)).toBeNull();
      expect(await abuse.policy(ownerId)).toEqual({ cpuWarningPercent: 20, cpuPercent: 50, memoryPercent: 95, action: 'terminate' });
    } finally {
      await store.deletePolicy(ownerId);
    }
  });

  it('leaves kernels of sessions that are not RUNNING alone', async () => {
    const ended = await session('TERMINATED');
    const restarting = await session('RUNNING');
    await store.recordTransition({ sessionId: restarting.sessionId, from: 'RUNNING', to: 'RESTARTING' });
    expect(await abuse.recordLook(`n-1-${tag}`, [{ kernelId: ended.kernelId, usage: busy }, { kernelId: restarting.kernelId, usage: busy }])).toEqual({ kernels: 0, abusing: 0, warned: [], terminate: [] });
    expect(await looksOf(ended.kernelId)).toBeUndefined();
  });
});
