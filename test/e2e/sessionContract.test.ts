import type { TestWorkflowEnvironment } from '@temporalio/testing';
import request from 'supertest';
import { OwnerId, SessionDetail, SessionKind, SessionStatus } from '../../domain/shared/searchAttributes';
import { eventually, startApiHarness, type ApiHarness } from '../helpers/api';
import { startTestComputeNode } from '../helpers/computeNode';
import { removeExecutionPools } from '../helpers/executionPools';
import { openInfra, type Infra } from '../helpers/infra';
import { randomMac, startPxeLab, writeRawImage, type PxeLab } from '../helpers/pxeLab';
import { discardChats, newChatId } from '../helpers/sandbox';
import { startSshServer, type SshServer } from '../helpers/sshd';
import { connectTestEnv } from '../helpers/temporal';
import { bearer, registerSshHost, testCredentialsKey } from '../helpers/terminal';

/**
 * The session contract as an operator sees it in the Web UI: one session of every kind a user
 * can run, started over HTTP, and the one query `OwnerId='…' AND SessionStatus='RUNNING'` lists
 * them all — each kind's own status in SessionDetail. Once they end, the same query lists none
 * and `SessionStatus='ENDED'` lists each.
 */
jest.setTimeout(300_000);

let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
let sshd: SshServer;
let lab: PxeLab;
let computeNode: { stop(): Promise<void> };
const chatId = newChatId();
const computeGroup = `contract-${chatId.slice(0, 8)}`;

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  api = await startApiHarness(env, infra, { USE_LOCAL_EXECUTOR: false, TERMINAL_CREDENTIALS_KEY: testCredentialsKey(), SANDBOX_TTL_SECONDS: 600 });
  sshd = await startSshServer();
  lab = await startPxeLab(infra.pool);
  computeNode = await startTestComputeNode(env, infra, { group: computeGroup, name: `${computeGroup}-n` });
});
afterAll(async () => {
  await discardChats(env.client, infra.docker, infra.config.SESSIONFLOW_INSTANCE, [chatId]);
  await removeExecutionPools(env.client, infra, api.taskQueue);
  await computeNode?.stop();
  await api?.stop();
  await lab?.stop();
  await sshd?.stop();
  await infra.close();
  await env.teardown();
});

interface Listed {
  kind: string;
  status: string;
  detail: string;
}

async function sessionsOfUser(status: string): Promise<Listed[]> {
  const listed: Listed[] = [];
  for await (const workflow of env.client.workflow.list({ query: `${OwnerId.name}='${api.userId}' AND ${SessionStatus.name}='${status}'` })) {
    const attributes = workflow.typedSearchAttributes;
    listed.push({ kind: String(attributes.get(SessionKind)), status: String(attributes.get(SessionStatus)), detail: String(attributes.get(SessionDetail)) });
  }
  return listed.sort((a, b) => a.kind.localeCompare(b.kind));
}

it('lists a running session of every kind with one query, and each as ENDED once it ends', async () => {
  const user = bearer(api.userKey);

  // A compute session, a sandbox, a terminal, a PXE boot session and an execution still at work.
  const compute = await request(api.app).post('/api/v1/sessions').set(user).send({ image: 'python:3.11', scaling_group: computeGroup, resources: { cpu: '0.5', memory: '256M' } }).expect(201);
  expect(compute.body.status).toBe('RUNNING');
  await request(api.app).put(`/api/v1/chats/${chatId}/sandbox`).set(user).expect(201);
  const hostId = await registerSshHost(api.app, api.adminKey, sshd, `contract-${Date.now().toString(36)}`);
  const terminal = await request(api.app).post('/api/v1/terminals').set(user).send({ host_id: hostId, mode: 'embedded' }).expect(201);
  writeRawImage(lab, 'contract.img');
  const image = await request(api.app).post('/api/v1/pxe/images').set(user).send({ name: 'contract', filename: 'contract.img', format: 'raw', boot_server_id: lab.bootServerId }).expect(202);
  await eventually(() => request(api.app).get(`/api/v1/pxe/images/${image.body.id}`).set(user), (res) => res.body.status === 'READY', 120_000);
  const machine = await request(api.app).post('/api/v1/pxe/machines').set(user).send({ name: 'contract', mac: randomMac(), ip: '10.78.0.1', boot_mode: 'bios', boot_server_id: lab.bootServerId }).expect(201);
  const pxe = await request(api.app).post('/api/v1/pxe/sessions/start').set(user).send({ machine_id: machine.body.id, image_id: image.body.id }).expect(202);
  await eventually(() => request(api.app).get(`/api/v1/pxe/sessions/${pxe.body.id}`).set(user), (res) => res.body.status !== 'STARTING', 120_000);
  // The program sleeps long enough for the query below to see it at work.
  const execution = request(api.app).post('/api/v2/execute').set(user)
    .send({ language: 'python', version: '3', files: [{ content: 'import time\ntime.sleep(6)\nprint("done")' }], run_timeout: 15_000 })
    .then((res) => res);

  const running = await eventually(() => sessionsOfUser('RUNNING'), (listed) => listed.length === 5, 30_000);
  expect(running).toEqual([
    { kind: 'compute', status: 'RUNNING', detail: 'RUNNING' },
    { kind: 'execution', status: 'RUNNING', detail: 'RUNNING' },
    { kind: 'pxe', status: 'RUNNING', detail: 'ACTIVE' },
    { kind: 'sandbox', status: 'RUNNING', detail: 'RUNNING' },
    { kind: 'terminal', status: 'RUNNING', detail: 'active' },
  ]);

  expect((await execution).body.run.stdout).toBe('done\n');
  await request(api.app).delete(`/api/v1/terminals/${terminal.body.session_id}`).set(user).expect(200);
  await request(api.app).post(`/api/v1/pxe/sessions/${pxe.body.id}/stop`).set(user).expect(200);
  await request(api.app).delete(`/api/v1/chats/${chatId}/sandbox`).set(user).expect(204);
  await request(api.app).delete(`/api/v1/sessions/${compute.body.id}`).set(user).expect(200);

  expect(await eventually(() => sessionsOfUser('RUNNING'), (listed) => listed.length === 0, 30_000)).toEqual([]);
  const ended = await eventually(() => sessionsOfUser('ENDED'), (listed) => listed.length >= 6, 30_000);
  expect(ended).toEqual(expect.arrayContaining([
    { kind: 'compute', status: 'ENDED', detail: 'TERMINATED' },
    { kind: 'execution', status: 'ENDED', detail: 'OK' },
    { kind: 'pxe', status: 'ENDED', detail: 'STOPPED' },
    { kind: 'pxe-image', status: 'ENDED', detail: 'READY' },
    { kind: 'sandbox', status: 'ENDED', detail: 'STOPPED' },
    { kind: 'terminal', status: 'ENDED', detail: 'closed' },
  ]));
});
