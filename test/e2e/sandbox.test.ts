import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import request from 'supertest';
import { createApp } from '../../api/platform/app';
import { fitHostConfig } from '../../activities/shared/containerRuntime';
import { instanceLabel } from '../../activities/shared/docker';
import { currentSandboxQuery, makeSandboxWorkflowId, sandboxContainerName } from '../../domain/sandbox/sandbox';
import type { sandboxSweepWorkflow } from '../../workflows/sandbox/sandboxSweep';
import { createLogger } from '../../platform/logger';
import { eventually, startApiHarness, type ApiHarness } from '../helpers/api';
import { fileToolsOutput, fileToolsScript } from '../helpers/fileTools';
import { openInfra, type Infra } from '../helpers/infra';
import { containersOfChat, discardChats, eventsOfChat, trackedChats, userIdOfKey } from '../helpers/sandbox';
import { connectTestEnv, createTestWorker, uniqueTaskQueue } from '../helpers/temporal';

/**
 * The seed's seven scenarios (003), through HTTP against the real api, Temporal, Docker and
 * PostgreSQL. Sandboxes that must expire come from an api configured with a TTL of a few
 * seconds; the others from one with a TTL no test outlives.
 */
const ttlSeconds = 120;
const shortTtlSeconds = 3;
// One user makes every chat of this file; the per-user limit has tests of its own (sandboxIsolation).
const maxPerUser = 1000;
let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
let expiringApi: Express;
let server: Server;
let base: string;
const chats = trackedChats();
const chat = chats.next;

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  api = await startApiHarness(env, infra, { SANDBOX_TTL_SECONDS: ttlSeconds, SANDBOX_MAX_PER_USER: maxPerUser });
  // The same users and worker, another TTL.
  expiringApi = createApp({
    config: { ...infra.config, TEMPORAL_TASK_QUEUE: api.taskQueue, SANDBOX_TTL_SECONDS: shortTtlSeconds, SANDBOX_MAX_PER_USER: maxPerUser },
    temporal: env.client, pool: infra.pool, docker: infra.docker, log: createLogger('silent', 'sandbox-test'),
  });
  server = api.app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.close();
  await discardChats(env.client, infra.docker, infra.config.SESSIONFLOW_INSTANCE, chats.ids);
  await api.stop();
  await infra.close();
  await env.teardown();
});

const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });
const ensure = (chatId: string, key = api.userKey, app = api.app) => request(app).put(`/api/v1/chats/${chatId}/sandbox`).set(bearer(key));
const ensureExpiring = (chatId: string) => ensure(chatId, api.userKey, expiringApi);
const current = (chatId: string, key = api.userKey) => request(api.app).get(`/api/v1/chats/${chatId}/sandbox`).set(bearer(key));
const events = (chatId: string) => eventsOfChat(infra.pool, chatId);
const containers = (chatId: string) => containersOfChat(infra.docker, infra.config.SESSIONFLOW_INSTANCE, chatId);
const untilExpired = (chatId: string) => eventually(() => current(chatId), (res) => res.body.status === 'EXPIRED', 20_000);

/** Runs one cleanup sweep over this test user's chats and waits for it to finish. */
async function sweep(worker?: Worker, taskQueue = api.taskQueue) {
  const ownerId = await userIdOfKey(infra.pool, api.userKey);
  const run = () => env.client.workflow.execute<typeof sandboxSweepWorkflow>('sandboxSweepWorkflow', { workflowId: `sandbox-sweep/test-${chat()}`, taskQueue, args: [{ ownerId }] });
  return worker ? worker.runUntil(run) : run();
}

describe('PUT /api/v1/chats/:chatId/sandbox', () => {
  it('creates a sandbox for a new chat named in 32-hex form, under its canonical id', async () => {
    const chatId = chat();
    const res = await ensure(chatId.replace(/-/g, '').toUpperCase()).expect(201);
    expect(res.body).toMatchObject({ chat_id: chatId, status: 'RUNNING', reused: false, workflow_id: `sandbox/${chatId}` });
    expect(Date.parse(res.body.expires_at) - Date.parse(res.body.created_at)).toBe(ttlSeconds * 1000);

    const [container, ...others] = await containers(chatId);
    expect(others).toEqual([]);
    expect(container).toMatchObject({ Id: res.body.container_id, State: 'running', Names: [`/${sandboxContainerName(res.body.session_id)}`] });
    expect(container!.Labels[instanceLabel]).toBe(infra.config.SESSIONFLOW_INSTANCE);
    const inspected = await infra.docker.getContainer(container!.Id).inspect();
    // Under gVisor (the default here: the bring-up registers runsc), with its kernel's share on top of the limits.
    expect(inspected.HostConfig).toMatchObject({ NetworkMode: 'none', Runtime: 'runsc', Memory: fitHostConfig('runsc', { Memory: 256 * 1024 * 1024, PidsLimit: 128 }).Memory });

    expect(await events(chatId)).toEqual([{ event: 'sandbox_created', session_id: res.body.session_id, container_id: res.body.container_id, error: null }]);
    const again = await current(chatId).expect(200);
    expect(again.body).toMatchObject({ session_id: res.body.session_id, chat_id: chatId, container_id: res.body.container_id, status: 'RUNNING' });
  });

  it('reuses the active sandbox when it has not expired, creating and stopping nothing', async () => {
    const chatId = chat();
    const first = await ensure(chatId).expect(201);
    const second = await ensure(chatId).expect(200);
    expect(second.body).toEqual({ ...first.body, reused: true });
    expect((await containers(chatId)).map((c) => c.Id)).toEqual([first.body.container_id]);
    expect((await events(chatId)).map((e) => [e.event, e.session_id])).toEqual([
      ['sandbox_created', first.body.session_id],
      ['sandbox_reused', first.body.session_id],
    ]);
  });

  it('replaces an expired sandbox: stops the old container, then creates a new one', async () => {
    const chatId = chat();
    const old = await ensureExpiring(chatId).expect(201);
    await untilExpired(chatId);
    const replacement = await ensure(chatId).expect(201);
    expect(replacement.body).toMatchObject({ chat_id: chatId, status: 'RUNNING', reused: false });
    expect(replacement.body.session_id).not.toBe(old.body.session_id);
    expect((await containers(chatId)).map((c) => c.Id)).toEqual([replacement.body.container_id]);
    expect(await events(chatId)).toEqual([
      { event: 'sandbox_created', session_id: old.body.session_id, container_id: old.body.container_id, error: null },
      { event: 'sandbox_replaced', session_id: old.body.session_id, container_id: old.body.container_id, error: null },
      { event: 'sandbox_created', session_id: replacement.body.session_id, container_id: replacement.body.container_id, error: null },
    ]);
  });

  it('serialises concurrent ensures for one chat: exactly one container, the same sandbox for every caller', async () => {
    const chatId = chat();
    const callers = 8;
    const responses = await Promise.all(
      Array.from({ length: callers }, async () => {
        const res = await fetch(`${base}/api/v1/chats/${chatId}/sandbox`, { method: 'PUT', headers: bearer(api.userKey) });
        return { status: res.status, body: (await res.json()) as { session_id: string; container_id: string; reused: boolean } };
      }),
    );
    const sessions = new Set(responses.map((r) => r.body.session_id));
    expect(sessions.size).toBe(1);
    expect(responses.filter((r) => r.status === 201 && !r.body.reused)).toHaveLength(1);
    expect(responses.filter((r) => r.status === 200 && r.body.reused)).toHaveLength(callers - 1);
    expect(await containers(chatId)).toHaveLength(1);
    const recorded = (await events(chatId)).map((e) => e.event);
    expect(recorded).toEqual(['sandbox_created', ...Array<string>(callers - 1).fill('sandbox_reused')]);
  });

  it('answers 400 for a chat id that is not a UUID, and starts nothing', async () => {
    const res = await ensure('not-a-chat').expect(400);
    expect(res.body).toMatchObject({ code: 'ValidationFailed', errors: [expect.objectContaining({ field: 'params.chatId' })] });
    await ensure('1111111111111111111111111111111').expect(400);
  });

  it('answers 404 for another user\'s chat, on every route', async () => {
    const chatId = chat();
    const other = await startApiHarness(env, infra, { SANDBOX_TTL_SECONDS: ttlSeconds, TEMPORAL_TASK_QUEUE: api.taskQueue });
    try {
      await ensure(chatId).expect(201);
      expect((await ensure(chatId, other.userKey).expect(404)).body.code).toBe('NotFound');
      await current(chatId, other.userKey).expect(404);
      await request(api.app).delete(`/api/v1/chats/${chatId}/sandbox`).set(bearer(other.userKey)).expect(404);
      await request(api.app).post(`/api/v1/chats/${chatId}/sandbox/exec`).set(bearer(other.userKey)).send({ code: 'print(1)' }).expect(404);
      // An admin may act for the owner.
      expect((await ensure(chatId, other.adminKey).expect(200)).body.reused).toBe(true);
    } finally {
      await other.stop();
    }
    expect(await containers(chatId)).toHaveLength(1);
  });
});

describe('cleanup sweep', () => {
  it('stops and removes only expired sandboxes', async () => {
    const [expiredA, expiredB, active] = [chat(), chat(), chat()];
    const a = await ensureExpiring(expiredA).expect(201);
    const b = await ensureExpiring(expiredB).expect(201);
    await untilExpired(expiredA);
    await untilExpired(expiredB);
    const kept = await ensure(active).expect(201);

    await sweep();
    const cleaned = await eventually(() => Promise.all([events(expiredA), events(expiredB)]), (all) => all.every((list) => list.some((e) => e.event === 'sandbox_cleaned')));
    expect(cleaned.map((list) => list.map((e) => [e.event, e.session_id]))).toEqual([
      [['sandbox_created', a.body.session_id], ['sandbox_cleaned', a.body.session_id]],
      [['sandbox_created', b.body.session_id], ['sandbox_cleaned', b.body.session_id]],
    ]);
    expect(await containers(expiredA)).toEqual([]);
    expect(await containers(expiredB)).toEqual([]);
    await current(expiredA).expect(404);
    expect((await containers(active)).map((c) => c.Id)).toEqual([kept.body.container_id]);
    expect((await events(active)).map((e) => e.event)).toEqual(['sandbox_created']);
  });

  it('skips a sandbox replaced since the sweep took its snapshot', async () => {
    const chatId = chat();
    let snapshot: { chatId: string; sessionId: string }[] = [];
    // A sweep whose snapshot still shows the old session (taken before the replacement).
    const staleQueue = uniqueTaskQueue('stale-sweep');
    const stale = await createTestWorker(env, staleQueue, { ...infra.activities, listExpiredSandboxes: async () => snapshot });
    const old = await ensureExpiring(chatId).expect(201);
    await untilExpired(chatId);
    snapshot = [{ chatId, sessionId: old.body.session_id }];
    const replacement = await ensure(chatId).expect(201);

    expect(await sweep(stale, staleQueue)).toMatchObject({ signalled: 1 });

    // Once the chat's workflow has handled the sweep's signal, the replacement is untouched.
    const handle = env.client.workflow.getHandle(makeSandboxWorkflowId(chatId));
    await eventually(() => handle.fetchHistory(), (history) => {
      const events = history.events ?? [];
      const signalled = events.findIndex((e) => e.workflowExecutionSignaledEventAttributes);
      return signalled >= 0 && events.slice(signalled).some((e) => e.workflowTaskCompletedEventAttributes);
    });
    expect(await handle.query(currentSandboxQuery)).toMatchObject({ sessionId: replacement.body.session_id, status: expect.stringMatching(/^(RUNNING|EXPIRED)$/) });
    expect((await containers(chatId)).map((c) => c.Id)).toEqual([replacement.body.container_id]);
    expect((await events(chatId)).map((e) => e.event)).toEqual(['sandbox_created', 'sandbox_replaced', 'sandbox_created']);
  });

  it('removes this instance\'s sandbox containers that no live session claims', async () => {
    const chatId = chat();
    const res = await ensure(chatId).expect(201);
    // Behind the workflow's back: the session is recorded stopped but its container survived.
    await infra.pool.query(`UPDATE sandboxes SET status = 'STOPPED' WHERE session_id = $1`, [res.body.session_id]);
    const report = await sweep();
    expect(report.orphansRemoved).toBeGreaterThanOrEqual(1);
    expect(await containers(chatId)).toEqual([]);
  });
});

describe('DELETE /api/v1/chats/:chatId/sandbox', () => {
  it('stops the sandbox and removes its container, and answers the same when repeated', async () => {
    const chatId = chat();
    const res = await ensure(chatId).expect(201);
    await request(api.app).delete(`/api/v1/chats/${chatId}/sandbox`).set(bearer(api.userKey)).expect(204);
    expect(await containers(chatId)).toEqual([]);
    await current(chatId).expect(404);
    await request(api.app).delete(`/api/v1/chats/${chatId}/sandbox`).set(bearer(api.userKey)).expect(204);
    expect((await events(chatId)).map((e) => [e.event, e.session_id])).toEqual([['sandbox_created', res.body.session_id], ['sandbox_stopped', res.body.session_id]]);
  });

  it('answers 404 for a chat nobody ever used', async () => {
    await request(api.app).delete(`/api/v1/chats/${chat()}/sandbox`).set(bearer(api.userKey)).expect(404);
  });
});

describe('POST /api/v1/chats/:chatId/sandbox/exec', () => {
  const exec = (chatId: string, body: object) => request(api.app).post(`/api/v1/chats/${chatId}/sandbox/exec`).set(bearer(api.userKey)).send(body);

  it('runs Python with stdin, and keeps files for the sandbox\'s life', async () => {
    const chatId = chat();
    await ensure(chatId).expect(201);
    const written = await exec(chatId, { code: 'import sys\nopen("notes.txt","w").write(sys.stdin.read().upper())\nprint("ok")', stdin: 'hello sandbox' }).expect(200);
    expect(written.body).toMatchObject({ stdout: 'ok\n', stderr: '', exit_code: 0, timed_out: false });
    const read = await exec(chatId, { language: 'shell', code: 'cat notes.txt; echo; echo oops >&2; exit 3' }).expect(200);
    expect(read.body).toMatchObject({ stdout: 'HELLO SANDBOX\n', stderr: 'oops\n', exit_code: 3, timed_out: false });
  });

  it('has no network inside the sandbox', async () => {
    const chatId = chat();
    await ensure(chatId).expect(201);
    // Only the loopback interface exists: NetworkMode none.
    const res = await exec(chatId, { language: 'shell', code: "tail -n +3 /proc/net/dev | cut -d: -f1" }).expect(200);
    expect(res.body.stdout.trim().split(/\s+/)).toEqual(['lo']);
  });

  it('lists, stats, copies, measures and finds files with the usual shell tools', async () => {
    const chatId = chat();
    await ensure(chatId).expect(201);
    const res = await exec(chatId, { language: 'shell', code: fileToolsScript }).expect(200);
    expect(res.body).toMatchObject({ stdout: fileToolsOutput, stderr: '', exit_code: 0 });
  });

  it('runs code under gVisor\'s kernel, not the host\'s', async () => {
    const chatId = chat();
    await ensure(chatId).expect(201);
    const res = await exec(chatId, { language: 'shell', code: 'uname -r' }).expect(200);
    expect(res.body).toMatchObject({ stdout: '4.4.0\n', exit_code: 0 });
  });

  it('kills a command that runs past its timeout, and cuts output at the cap', async () => {
    const chatId = chat();
    await ensure(chatId).expect(201);
    const slow = await exec(chatId, { command: ['sleep', '30'], timeout_ms: 500 }).expect(200);
    expect(slow.body).toMatchObject({ timed_out: true, exit_code: 137 });
    const loud = await exec(chatId, { code: 'print("x" * 200000)' }).expect(200);
    expect(loud.body).toMatchObject({ exit_code: 0, truncated: { stdout: true, stderr: false } });
    expect(loud.body.stdout).toHaveLength(64 * 1024);
  });

  it('answers 409 when the chat has no active sandbox, and 400 for a body with neither code nor command', async () => {
    const chatId = chat();
    await ensure(chatId).expect(201);
    await request(api.app).delete(`/api/v1/chats/${chatId}/sandbox`).set(bearer(api.userKey)).expect(204);
    expect((await exec(chatId, { code: 'print(1)' }).expect(409)).body).toMatchObject({ code: 'InvalidSessionState' });
    expect((await exec(chatId, { stdin: 'x' }).expect(400)).body.errors[0].field).toBe('body.code');
  });
});

describe('sandbox metrics', () => {
  it('counts every sandbox event in /metrics', async () => {
    const chatId = chat();
    await ensure(chatId).expect(201);
    await ensure(chatId).expect(200);
    const res = await request(api.app).get('/metrics').expect(200);
    for (const event of ['sandbox_created', 'sandbox_reused', 'sandbox_replaced', 'sandbox_cleaned', 'sandbox_clean_failed', 'sandbox_lost']) {
      expect(res.text).toMatch(new RegExp(`sessionflow_sandbox_events_total\\{event="${event}"\\} \\d+`));
    }
    expect(Number(/sessionflow_sandbox_events_total\{event="sandbox_reused"\} (\d+)/.exec(res.text)?.[1])).toBeGreaterThanOrEqual(1);
  });
});
