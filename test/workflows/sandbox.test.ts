import { WorkflowUpdateFailedError } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import { createUserKey } from '../../api/platform/auth';
import { createSandboxActivities } from '../../activities/sandbox/sandbox';
import { ensureSandbox, sandboxStartOperation } from '../../api/sandbox/routes';
import {
  currentSandboxQuery,
  ensureSandboxUpdate,
  execInSandboxUpdate,
  makeSandboxWorkflowId,
  sandboxContainerName,
  type SandboxRecord,
  type SandboxSweepReport,
} from '../../domain/sandbox/sandbox';
import { namedFailure } from '../../domain/shared/failures';
import { activityDepsFrom } from '../../workers/activityDeps';
import { ChatId, OwnerId, SessionDetail, SessionKind, SessionStatus } from '../../domain/shared/searchAttributes';
import type { sandboxSweepWorkflow } from '../../workflows/sandbox/sandboxSweep';
import { eventually } from '../helpers/api';
import { openInfra, type Infra } from '../helpers/infra';
import { containersOfChat, discardChats, dockerThatCannotStart, eventsOfChat, trackedChats } from '../helpers/sandbox';
import { connectTestEnv, createTestWorker, uniqueTaskQueue } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
let infra: Infra;
let ownerId: string;
const chats = trackedChats();
const chat = chats.next;

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  ({ userId: ownerId } = await createUserKey(infra.pool, `sandbox-owner-${randomUUID().slice(0, 8)}`, 'user', 'test'));
});
afterAll(async () => {
  await discardChats(env.client, infra.docker, infra.config.SESSIONFLOW_INSTANCE, chats.ids);
  await infra.close();
  await env.teardown();
});

const containers = (chatId: string) => containersOfChat(infra.docker, infra.config.SESSIONFLOW_INSTANCE, chatId);
const handleOf = (chatId: string) => env.client.workflow.getHandle(makeSandboxWorkflowId(chatId));
const untilStatus = (chatId: string, status: SandboxRecord['status']) =>
  eventually(() => handleOf(chatId).query(currentSandboxQuery), (sandbox) => sandbox?.status === status, 20_000);
const sweep = (taskQueue: string) =>
  env.client.workflow.execute<typeof sandboxSweepWorkflow>('sandboxSweepWorkflow', { workflowId: `sandbox-sweep/test-${randomUUID()}`, taskQueue, args: [{ ownerId }] });

/** The seed's RuntimeError('stop_failed'), thrown by a runtime that refuses to stop one container. */
class RuntimeError extends Error {
  override name = 'RuntimeError';
}

describe('sandboxWorkflow', () => {
  it('logs sandbox_clean_failed with the error type when a stop fails, keeps that sandbox live, cleans the others, and cleans it on the next sweep', async () => {
    const refused = new Set<string>();
    const activities = {
      ...infra.activities,
      stopSandboxContainer: async (input: Parameters<Infra['activities']['stopSandboxContainer']>[0]) => {
        if (refused.has(input.containerName)) throw new RuntimeError('stop_failed');
        return infra.activities.stopSandboxContainer(input);
      },
    };
    const taskQueue = uniqueTaskQueue('sandbox-stop-failure');
    const worker = await createTestWorker(env, taskQueue, activities);
    const [failing, clean] = [chat(), chat()];
    await worker.runUntil(async () => {
      const { sandbox: stuck } = await ensureSandbox(env.client, { taskQueue, chatId: failing, ownerId, ttlMs: 1500 });
      const { sandbox: cleaned } = await ensureSandbox(env.client, { taskQueue, chatId: clean, ownerId, ttlMs: 1500 });
      refused.add(stuck.containerName);
      await untilStatus(failing, 'EXPIRED');
      await untilStatus(clean, 'EXPIRED');

      expect(await sweep(taskQueue)).toMatchObject<Partial<SandboxSweepReport>>({ signalled: 2 });
      const [failed, done] = await eventually(
        () => Promise.all([eventsOfChat(infra.pool, failing), eventsOfChat(infra.pool, clean)]),
        ([f, c]) => f.length === 2 && c.length === 2,
      );
      expect(failed[1]).toEqual({ event: 'sandbox_clean_failed', session_id: stuck.sessionId, container_id: stuck.containerId, error: 'RuntimeError' });
      expect(done[1]).toEqual({ event: 'sandbox_cleaned', session_id: cleaned.sessionId, container_id: cleaned.containerId, error: null });
      expect((await containers(failing)).map((c) => c.Id)).toEqual([stuck.containerId]);
      expect(await containers(clean)).toEqual([]);
      const { rows } = await infra.pool.query('SELECT status FROM sandboxes WHERE session_id = $1', [stuck.sessionId]);
      expect(rows).toEqual([{ status: 'EXPIRED' }]);

      // The record stayed live, so the next sweep tries it again.
      refused.clear();
      await sweep(taskQueue);
      await eventually(() => eventsOfChat(infra.pool, failing), (events) => events.length === 3);
      expect((await eventsOfChat(infra.pool, failing)).map((e) => e.event)).toEqual(['sandbox_created', 'sandbox_clean_failed', 'sandbox_cleaned']);
      expect(await containers(failing)).toEqual([]);
    });
  });

  it('leaves exactly one working container when the worker dies between creating the container and recording it', async () => {
    const taskQueue = uniqueTaskQueue('sandbox-crash');
    const chatId = chat();
    let created!: () => void;
    const containerCreated = new Promise<void>((resolve) => (created = resolve));
    const crashing = await createTestWorker(env, taskQueue, {
      ...infra.activities,
      // The container is made, then the worker dies before the result reaches the workflow.
      createSandboxContainer: async (input: Parameters<Infra['activities']['createSandboxContainer']>[0]) => {
        await infra.activities.createSandboxContainer(input);
        created();
        await Context.current().cancelled;
        throw new Error('unreachable: the worker shut down');
      },
    });
    const crashed = crashing.run();
    const update = await env.client.workflow.startUpdateWithStart(ensureSandboxUpdate, {
      args: [{ ownerId }],
      startWorkflowOperation: sandboxStartOperation({ taskQueue, chatId, ownerId, ttlMs: 300_000 }),
      waitForStage: 'ACCEPTED',
    });
    await containerCreated;
    crashing.shutdown();
    await crashed;
    expect(await containers(chatId)).toHaveLength(1);

    const restarted = await createTestWorker(env, taskQueue, infra.activities);
    await restarted.runUntil(async () => {
      const { sandbox, reused } = await update.result();
      expect(reused).toBe(false);
      const all = await containers(chatId);
      expect(all.map((c) => [c.Id, c.Names[0], c.State])).toEqual([[sandbox.containerId, `/${sandboxContainerName(sandbox.sessionId)}`, 'running']]);
      const ran = await handleOf(chatId).executeUpdate(execInSandboxUpdate, { args: [{ ownerId, command: ['python3', '-c', 'print(6 * 7)'], timeoutMs: 10_000 }] });
      expect(ran).toMatchObject({ stdout: '42\n', exitCode: 0 });
      expect((await eventsOfChat(infra.pool, chatId)).map((e) => e.event)).toEqual(['sandbox_created']);
    });
  });

  it('leaves no container and no CREATING row when a create fails, and fails by name', async () => {
    const sessionsOf = async (chatId: string) => (await infra.pool.query('SELECT status, stop_reason FROM sandboxes WHERE chat_id = $1', [chatId])).rows;
    const failedEnsure = async (activities: Partial<Infra['activities']>, queue: string) => {
      const chatId = chat();
      const taskQueue = uniqueTaskQueue(queue);
      const worker = await createTestWorker(env, taskQueue, { ...infra.activities, ...activities });
      const failure = await worker.runUntil(async () => {
        const err = await ensureSandbox(env.client, { taskQueue, chatId, ownerId, ttlMs: 300_000 }).catch((caught: unknown) => caught);
        // With no sandbox left, the chat's workflow ends rather than waiting for ever.
        await handleOf(chatId).result();
        return err;
      });
      expect(failure).toBeInstanceOf(WorkflowUpdateFailedError);
      const attributes = (await handleOf(chatId).describe()).typedSearchAttributes;
      expect([attributes.get(SessionStatus), attributes.get(SessionDetail)]).toEqual(['ENDED', 'STOPPED']);
      return { chatId, type: namedFailure(failure)?.type };
    };
    const deps = activityDepsFrom(infra.config, infra);

    // The engine makes the container, then cannot start it, on every attempt.
    const unstartable = createSandboxActivities({ ...deps, docker: dockerThatCannotStart(infra.docker) });
    const refused = await failedEnsure({ createSandboxContainer: unstartable.createSandboxContainer }, 'sandbox-create-fails');
    expect(refused.type).toBe('SandboxCreateFailed');
    expect(await containers(refused.chatId)).toEqual([]);
    expect(await sessionsOf(refused.chatId)).toEqual([{ status: 'STOPPED', stop_reason: 'failed' }]);

    // The image is not there: nothing is made, nothing is left CREATING.
    const imageless = createSandboxActivities({ ...deps, baseImage: `sessionflow/missing:${randomUUID()}` });
    const missing = await failedEnsure({ createSandboxContainer: imageless.createSandboxContainer }, 'sandbox-no-image');
    expect(missing.type).toBe('ImageNotFound');
    expect(await containers(missing.chatId)).toEqual([]);
    expect(await sessionsOf(missing.chatId)).toEqual([{ status: 'STOPPED', stop_reason: 'failed' }]);
  });

  it('reuses its sandbox while the engine does not answer the probe, and replaces it once the engine says its container died', async () => {
    let engineAnswers = false;
    const taskQueue = uniqueTaskQueue('sandbox-probe');
    const worker = await createTestWorker(env, taskQueue, {
      ...infra.activities,
      probeSandboxContainer: (input: Parameters<Infra['activities']['probeSandboxContainer']>[0]) =>
        engineAnswers ? infra.activities.probeSandboxContainer(input) : Promise.reject(Object.assign(new Error('(injected) connect ECONNREFUSED /var/run/docker.sock'), { code: 'ECONNREFUSED' })),
    });
    const chatId = chat();
    await worker.runUntil(async () => {
      const input = { taskQueue, chatId, ownerId, ttlMs: 300_000 };
      const { sandbox } = await ensureSandbox(env.client, input);
      await infra.docker.getContainer(sandbox.containerId).kill();
      // Unknown is not dead: the ensure answers as it did before it could probe.
      expect(await ensureSandbox(env.client, input)).toEqual({ sandbox, reused: true });
      engineAnswers = true;
      const replaced = await ensureSandbox(env.client, input);
      expect(replaced.reused).toBe(false);
      expect(replaced.sandbox.sessionId).not.toBe(sandbox.sessionId);
      expect((await containers(chatId)).map((c) => [c.Id, c.State])).toEqual([[replaced.sandbox.containerId, 'running']]);
      expect((await eventsOfChat(infra.pool, chatId)).map((e) => e.event)).toEqual(['sandbox_created', 'sandbox_reused', 'sandbox_lost', 'sandbox_created']);
    });
  });

  it('continues as new when its history grows long, keeping the same sandbox', async () => {
    const taskQueue = uniqueTaskQueue('sandbox-continue');
    const worker = await createTestWorker(env, taskQueue, infra.activities);
    const chatId = chat();
    await worker.runUntil(async () => {
      const input = { taskQueue, chatId, ownerId, ttlMs: 300_000, historyLimit: 25 };
      const { sandbox } = await ensureSandbox(env.client, input);
      const { runId: firstRun } = await handleOf(chatId).describe();
      for (let i = 0; i < 6; i++) {
        expect(await ensureSandbox(env.client, input)).toEqual({ sandbox, reused: true });
      }
      const latest = await eventually(() => handleOf(chatId).describe(), (d) => d.runId !== firstRun);
      expect(latest.runId).not.toBe(firstRun);
      expect(await handleOf(chatId).query(currentSandboxQuery)).toEqual(sandbox);
      expect((await env.client.workflow.getHandle(makeSandboxWorkflowId(chatId), firstRun).describe()).status.name).toBe('CONTINUED_AS_NEW');
      expect(await ensureSandbox(env.client, input)).toEqual({ sandbox, reused: true });
      expect(await containers(chatId)).toHaveLength(1);
    });
  });

  it('refuses an ensure from someone who does not own the chat, and carries its search attributes', async () => {
    const taskQueue = uniqueTaskQueue('sandbox-owner');
    const worker = await createTestWorker(env, taskQueue, infra.activities);
    const chatId = chat();
    await worker.runUntil(async () => {
      await ensureSandbox(env.client, { taskQueue, chatId, ownerId, ttlMs: 300_000 });
      const stranger = await ensureSandbox(env.client, { taskQueue, chatId, ownerId: randomUUID(), ttlMs: 300_000 }).catch((err: unknown) => err);
      expect(stranger).toBeInstanceOf(WorkflowUpdateFailedError);
      expect((stranger as WorkflowUpdateFailedError).cause).toMatchObject({ type: 'NotFound' });
      const attributes = (await handleOf(chatId).describe()).typedSearchAttributes;
      expect([attributes.get(SessionKind), attributes.get(ChatId), attributes.get(OwnerId), attributes.get(SessionStatus)]).toEqual(['sandbox', chatId, ownerId, 'RUNNING']);
    });
  });
});

describe('sandboxSweepWorkflow', () => {
  it('ends SWEPT when its run finishes, and FAILED (not RUNNING for ever) when it cannot list what expired', async () => {
    const statusOf = async (workflowId: string) => {
      const attributes = (await env.client.workflow.getHandle(workflowId).describe()).typedSearchAttributes;
      return [attributes.get(SessionStatus), attributes.get(SessionDetail)];
    };
    const start = (taskQueue: string) => env.client.workflow.start<typeof sandboxSweepWorkflow>('sandboxSweepWorkflow', { workflowId: `sandbox-sweep/test-${randomUUID()}`, taskQueue, args: [{ ownerId }] });

    const healthyQueue = uniqueTaskQueue('sandbox-sweep');
    const healthy = await (await createTestWorker(env, healthyQueue, infra.activities)).runUntil(async () => {
      const handle = await start(healthyQueue);
      await handle.result();
      return handle.workflowId;
    });
    expect(await statusOf(healthy)).toEqual(['ENDED', 'SWEPT']);

    const failingQueue = uniqueTaskQueue('sandbox-sweep');
    const unreachable = { ...infra.activities, listExpiredSandboxes: () => Promise.reject(new Error('PostgreSQL is away (injected)')) };
    const failed = await (await createTestWorker(env, failingQueue, unreachable)).runUntil(async () => {
      const handle = await start(failingQueue);
      await expect(handle.result()).rejects.toThrow();
      return handle.workflowId;
    });
    expect(await statusOf(failed)).toEqual(['FAILED', 'FAILED']);
  });
});
