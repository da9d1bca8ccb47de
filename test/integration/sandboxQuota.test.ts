import { randomUUID } from 'node:crypto';
import { createUserKey } from '../../api/platform/auth';
import { createSandboxStore } from '../../activities/sandbox/store';
import { sandboxContainerName, type SandboxPlan } from '../../domain/sandbox/sandbox';
import { createPool, type Pool } from '../../platform/database';
import { openInfra, type Infra } from '../helpers/infra';

/**
 * SANDBOX_MAX_PER_USER is enforced where a sandbox's row is written, in PostgreSQL: two
 * workers' pools admitting one owner's creates at once must never admit more than the limit.
 */
let infra: Infra;
let otherWorker: Pool;
const owners: string[] = [];

beforeAll(() => {
  infra = openInfra();
  otherWorker = createPool(infra.config.DATABASE_URL, 8);
});
afterAll(async () => {
  // These rows never had containers: nothing else would ever end them.
  await infra.pool.query('DELETE FROM sandbox_chats WHERE owner_id = ANY($1::uuid[])', [owners]);
  await otherWorker.end();
  await infra.close();
});

const newOwner = async () => {
  const { userId } = await createUserKey(infra.pool, `quota-${randomUUID().slice(0, 8)}`, 'user', 'test');
  owners.push(userId);
  return userId;
};

const plan = (ownerId: string, maxPerUser: number, lifetimeMs = 60_000): SandboxPlan => {
  const sessionId = randomUUID();
  const now = Date.now();
  return {
    sessionId, chatId: randomUUID(), ownerId, maxPerUser,
    containerName: sandboxContainerName(sessionId),
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + lifetimeMs).toISOString(),
  };
};

describe('the sandbox store\'s per-user limit', () => {
  it('admits exactly N of many simultaneous creates by one owner from two workers, and writes nothing for the others', async () => {
    const userId = await newOwner();
    const limit = 5;
    const stores = [createSandboxStore(infra.pool), createSandboxStore(otherWorker)];
    const plans = Array.from({ length: 40 }, () => plan(userId, limit));
    const answers = await Promise.all(plans.map((p, i) => stores[i % 2]!.recordCreating(p)));

    const admitted = plans.filter((_, i) => answers[i] === undefined);
    expect(admitted).toHaveLength(limit);
    for (const refusal of answers.filter((a) => a !== undefined)) {
      expect(refusal).toMatchObject({ limit, live: limit });
      expect(refusal.retryAfterSeconds).toBeGreaterThan(0);
      expect(refusal.retryAfterSeconds).toBeLessThanOrEqual(60);
    }
    const { rows } = await infra.pool.query<{ session_id: string }>('SELECT session_id FROM sandboxes WHERE owner_id = $1', [userId]);
    expect(rows.map((r) => r.session_id).sort()).toEqual(admitted.map((p) => p.sessionId).sort());
    const { rows: chats } = await infra.pool.query('SELECT count(*)::int AS n FROM sandbox_chats WHERE owner_id = $1', [userId]);
    expect(chats).toEqual([{ n: limit }]);
  });

  it('admits a retried create it admitted before, and counts neither stopped nor expired sandboxes', async () => {
    const userId = await newOwner();
    const store = createSandboxStore(infra.pool);
    const first = plan(userId, 1);
    expect(await store.recordCreating(first)).toBeUndefined();
    // The same create again (an activity retried after a lost answer) is not a second sandbox.
    expect(await store.recordCreating(first)).toBeUndefined();
    expect(await store.recordCreating(plan(userId, 1))).toMatchObject({ limit: 1, live: 1 });

    await store.markStopped(first.sessionId, 'stopped');
    const expiring = plan(userId, 1, 1);
    expect(await store.recordCreating(expiring)).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await store.recordCreating(plan(userId, 1))).toBeUndefined();
  });
});
