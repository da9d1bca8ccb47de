import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { Worker } from '@temporalio/worker';
import { randomBytes, randomUUID } from 'node:crypto';
import { createUserKey } from '../../api/platform/auth';
import { closeUpdate, heartbeatUpdate, makeTerminalWorkflowId, openedUpdate, type TerminalSessionInput } from '../../domain/terminal/terminal';
import { openInfra, type Infra } from '../helpers/infra';
import { connectTestEnv, createTestWorker, uniqueTaskQueue } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
let infra: Infra;
let worker: Worker;
let running: Promise<void>;
let taskQueue: string;
let fixture: { ownerId: string; hostId: string };

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  taskQueue = uniqueTaskQueue('terminal');
  worker = await createTestWorker(env, taskQueue, infra.activities);
  running = worker.run();
  const { userId } = await createUserKey(infra.pool, `wf-${randomUUID().slice(0, 8)}`, 'user', 'test');
  const hostId = randomUUID();
  // The credential is never opened here: any bytes do for the row.
  await infra.pool.query(
    `INSERT INTO terminal_hosts (id, name, address, port, username, auth_type, credential_sealed) VALUES ($1, $2, '127.0.0.1', 22, 'nobody', 'password', $3)`,
    [hostId, `wf-host-${hostId.slice(0, 8)}`, randomBytes(32)],
  );
  fixture = { ownerId: userId, hostId };
});
afterAll(async () => {
  worker.shutdown();
  await running;
  await infra.close();
  await env.teardown();
});

async function start(overrides: Partial<TerminalSessionInput> = {}) {
  const sessionId = randomBytes(32).toString('hex');
  const input: TerminalSessionInput = {
    sessionId, ownerId: fixture.ownerId, hostId: fixture.hostId, hostName: 'wf-host', mode: 'embedded', tokenHash: 'a'.repeat(64),
    ttlSeconds: 600, idleTimeoutSeconds: 600, ...overrides,
  };
  const handle = await env.client.workflow.start('terminalSessionWorkflow', { workflowId: makeTerminalWorkflowId(sessionId), taskQueue, args: [input] });
  const opened = await handle.executeUpdate(openedUpdate);
  return { handle, opened, sessionId };
}

const timerStarted = 'EVENT_TYPE_TIMER_STARTED';
async function eventTypes(workflowId: string): Promise<string[]> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  return (JSON.parse(historyToJSON(history)) as { events: { eventType: string }[] }).events.map((event) => event.eventType);
}

describe('terminalSessionWorkflow', () => {
  it('re-arms its idle timer lazily: heartbeats across several idle periods start far fewer timers', async () => {
    const { handle } = await start({ idleTimeoutSeconds: 2 });
    const heartbeats = 12;
    for (let i = 0; i < heartbeats; i++) {
      expect((await handle.executeUpdate(heartbeatUpdate)).status).toBe('active');
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const state = await handle.executeUpdate(closeUpdate, { args: [{ reason: 'user_close' }] });
    expect(state).toMatchObject({ status: 'closed', reasonClosed: 'user_close' });
    const timers = (await eventTypes(handle.workflowId)).filter((type) => type === timerStarted).length;
    // One timer per idle period that passed (the deadline re-checked when it fires), not per heartbeat.
    expect(timers).toBeGreaterThan(1);
    expect(timers).toBeLessThan(heartbeats / 2);
  });

  it('continues as new past its history limit, keeping its start, last heartbeat and TTL', async () => {
    const { handle, opened } = await start({ historyEventLimit: 30 });
    const firstRun = (await handle.describe()).runId;
    let lastSeen = opened.lastSeenAtMs;
    for (let i = 0; i < 20 && (await handle.describe()).runId === firstRun; i++) {
      lastSeen = (await handle.executeUpdate(heartbeatUpdate)).lastSeenAtMs;
    }
    const current = await handle.describe();
    expect(current.runId).not.toBe(firstRun);
    const state = await env.client.workflow.getHandle(handle.workflowId).executeUpdate(closeUpdate, { args: [{ reason: 'user_close' }] });
    expect(state).toMatchObject({ createdAtMs: opened.createdAtMs, expiresAtMs: opened.expiresAtMs, lastSeenAtMs: lastSeen, status: 'closed' });
    const { rows } = await infra.pool.query('SELECT status, reason_closed FROM terminal_sessions WHERE id = $1', [opened.sessionId]);
    expect(rows).toEqual([{ status: 'closed', reason_closed: 'user_close' }]);
  });

  it('expires at its TTL however recently it was heartbeated', async () => {
    const { handle, opened } = await start({ ttlSeconds: 3, idleTimeoutSeconds: 600 });
    expect((await handle.executeUpdate(heartbeatUpdate)).expiresAtMs).toBe(opened.expiresAtMs);
    expect(await handle.result()).toMatchObject({ status: 'expired', reasonClosed: 'ttl', expiresAtMs: opened.expiresAtMs });
    const { rows } = await infra.pool.query('SELECT status, reason_closed FROM terminal_sessions WHERE id = $1', [opened.sessionId]);
    expect(rows).toEqual([{ status: 'expired', reason_closed: 'ttl' }]);
  });

  it('refuses a heartbeat once the session has ended, leaving the expiry as it was', async () => {
    const { handle } = await start({ idleTimeoutSeconds: 1 });
    await handle.result();
    await expect(handle.executeUpdate(heartbeatUpdate)).rejects.toThrow();
    const { rows } = await infra.pool.query('SELECT status, reason_closed FROM terminal_sessions WHERE id = $1', [(await handle.result()).sessionId]);
    expect(rows).toEqual([{ status: 'expired', reason_closed: 'idle' }]);
  });
});
