import { type WorkflowHandle } from '@temporalio/client';
import { randomBytes, randomUUID } from 'node:crypto';
import { openRecorder, saveHistory } from './recorder';
import { createUserKey } from '../api/platform/auth';
import { closeUpdate, heartbeatUpdate, makeTerminalWorkflowId, openedUpdate, rotateTokenUpdate, type TerminalSessionInput } from '../domain/terminal/terminal';
import { createSessionflowWorker } from '../workers/createWorker';

/**
 * Records the terminal workflow's replay histories from real runs (real PostgreSQL read
 * model, real timers in seconds): a user close after heartbeats and a token rotation, idle and
 * TTL expiry, a close beacon, and a run that continued as new. Run through
 * scripts/record-histories.sh.
 */
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

type Scenario = { file: string; input: Partial<TerminalSessionInput>; drive(handle: WorkflowHandle): Promise<void> };
const scenarios: Scenario[] = [
  {
    file: 'terminal-user-close.json', input: {},
    async drive(handle) {
      await handle.executeUpdate(heartbeatUpdate);
      await handle.executeUpdate(rotateTokenUpdate, { args: [{ tokenHash: 'b'.repeat(64) }] });
      await handle.executeUpdate(heartbeatUpdate);
      await handle.executeUpdate(closeUpdate, { args: [{ reason: 'user_close' }] });
    },
  },
  {
    file: 'terminal-idle-expired.json', input: { idleTimeoutSeconds: 2 },
    async drive(handle) {
      // Heartbeats push the idle deadline back once (a lazy re-arm), then it lapses.
      await sleep(1000);
      await handle.executeUpdate(heartbeatUpdate);
      await handle.result();
    },
  },
  { file: 'terminal-ttl-expired.json', input: { ttlSeconds: 2 }, drive: async (handle) => void (await handle.result()) },
  { file: 'terminal-close-beacon.json', input: {}, drive: async (handle) => void (await handle.executeUpdate(closeUpdate, { args: [{ reason: 'client_lost' }] })) },
  {
    file: 'terminal-continued-as-new.json', input: { historyEventLimit: 30 },
    async drive(handle) {
      const firstRun = (await handle.describe()).runId;
      while ((await handle.describe()).runId === firstRun) await handle.executeUpdate(heartbeatUpdate);
      await handle.client.getHandle(handle.workflowId).executeUpdate(closeUpdate, { args: [{ reason: 'user_close' }] });
    },
  },
];

async function main(): Promise<void> {
  const recorder = await openRecorder();
  const { config, pool, activities, connection, client } = recorder;

  // The read model's rows need a real user and host.
  const { userId } = await createUserKey(pool, 'history-recorder', 'user', 'recorder');
  const hostId = randomUUID();
  await pool.query(
    `INSERT INTO terminal_hosts (id, name, address, port, username, auth_type, credential_sealed) VALUES ($1, $2, '127.0.0.1', 22, 'nobody', 'password', $3)`,
    [hostId, `recorder-${hostId.slice(0, 8)}`, randomBytes(32)],
  );

  const taskQueue = `record-${randomUUID()}`;
  const worker = await createSessionflowWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, activities, workflowBundlePath: recorder.workflowBundlePath });
  await worker.runUntil(async () => {
    for (const scenario of scenarios) {
      const sessionId = randomBytes(32).toString('hex');
      const input: TerminalSessionInput = {
        sessionId, ownerId: userId, hostId, hostName: 'recorder-host', mode: 'embedded', tokenHash: 'a'.repeat(64), ttlSeconds: 600, idleTimeoutSeconds: 600, ...scenario.input,
      };
      const handle = await client.workflow.start('terminalSessionWorkflow', { workflowId: makeTerminalWorkflowId(sessionId), taskQueue, args: [input] });
      const firstRunId = handle.firstExecutionRunId;
      await handle.executeUpdate(openedUpdate);
      await scenario.drive(handle);
      // The first run: for continue-as-new, that is the run that hands over its state.
      const history = await client.workflow.getHandle(handle.workflowId, firstRunId).fetchHistory();
      await saveHistory(history, scenario.file);
    }
  });
  await recorder.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
