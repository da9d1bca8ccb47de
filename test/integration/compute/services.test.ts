import { MockActivityEnvironment } from '@temporalio/testing';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import request from 'supertest';
import { createComputeNodeActivities, type KernelSpec } from '../../../activities/compute/node';
import { computeSecretsSealer } from '../../../activities/compute/secretStore';
import { ServiceProxy, serviceKey } from '../../../activities/compute/serviceProxy';
import { kernelUser } from '../../../activities/compute/kernelInit';
import { createUserKey } from '../../../api/platform/auth';
import { startApiHarness, type ApiHarness } from '../../helpers/api';
import { eventually, removeComputeLeftovers, startTestComputeNode } from '../../helpers/computeNode';
import { openInfra, type Infra } from '../../helpers/infra';
import { connectTestEnv } from '../../helpers/temporal';

/**
 * The node's service listeners against a real kernel (gVisor, no network): the relay carries
 * bytes both ways with half-closes, and a node worker started again opens its services'
 * listeners anew.
 */
let infra: Infra;
const env = new MockActivityEnvironment();
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);

beforeAll(() => {
  infra = openInfra();
});
afterAll(async () => {
  await infra.close();
});

/** Connects, sends `payload`, half-closes, and answers what came back before the other side ended. */
function exchange(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.end(payload);
  });
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

// Reads each connection to its end, then answers the sha256 and size of what came, and closes
// (7100); sends a greeting and closes at once, reading nothing (7101).
const echoServer = `
import hashlib, socket, threading
def digest(conn):
    h, n = hashlib.sha256(), 0
    while True:
        data = conn.recv(65536)
        if not data:
            break
        h.update(data); n += len(data)
    conn.sendall(('%s %d' % (h.hexdigest(), n)).encode()); conn.close()
def greet(conn):
    conn.sendall(b'hello, then nothing more\\n'); conn.close()
def serve(port, handler):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', port)); s.listen(16)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=handler, args=(conn,), daemon=True).start()
threading.Thread(target=serve, args=(7101, greet), daemon=True).start()
serve(7100, digest)
`;

describe('the relay into a kernel', () => {
  const sessionId = randomUUID();
  let ownerId: string;
  let containerId: string;
  let relayProxy: ServiceProxy;

  beforeAll(async () => {
    relayProxy = new ServiceProxy(infra.docker);
    const activities = createComputeNodeActivities({
      docker: infra.docker, pool: infra.pool, instance: infra.config.SESSIONFLOW_INSTANCE, sealer: computeSecretsSealer(infra.config.COMPUTE_SECRETS_KEY),
      containerRuntime: infra.containerRuntime, registryAddress: infra.config.REGISTRY_ADDRESS,
    });
    ({ userId: ownerId } = await createUserKey(infra.pool, `relay-${randomUUID().slice(0, 8)}`, 'user', 'test'));
    await run(activities.pullKernelImage, { reference: infra.config.COMPUTE_KERNEL_IMAGE });
    const spec: KernelSpec = {
      sessionId, ownerId, kernelId: randomUUID(), hostname: 'main1', role: 'main', idx: 1, imageReference: infra.config.COMPUTE_KERNEL_IMAGE,
      resources: { cpuMillis: 1000, memoryBytes: 256 * 1024 * 1024, gpu: 0 }, env: {}, vfolders: [], clusterHosts: ['main1'],
    };
    ({ containerId } = await run(activities.createKernel, spec));
    const exec = await infra.docker.getContainer(containerId).exec({ Cmd: ['python3', '-c', echoServer], User: `${kernelUser.uid}:${kernelUser.gid}`, AttachStdout: false, AttachStderr: false });
    await exec.start({ Detach: true });
    await eventually(async () => ((await relayProxy.listening(containerId, [7100, 7101])).length === 2 ? true : undefined));
  }, 180_000);
  afterAll(async () => {
    await relayProxy.closeAll();
    await removeComputeLeftovers(infra.docker, infra.config.SESSIONFLOW_INSTANCE, [sessionId], []);
    await infra.pool.query('DELETE FROM users WHERE id = $1', [ownerId]);
  });

  it('carries a MiB of random bytes in, passes the client\'s half-close on, and the app\'s whole answer back before the end', async () => {
    const port = await relayProxy.open({ key: serviceKey(sessionId, 'digest'), hostPort: 0, containerId, containerPort: 7100 });
    const payload = randomBytes(1024 * 1024);
    const answer = (await exchange(port, payload)).toString();
    expect(answer).toBe(`${createHash('sha256').update(payload).digest('hex')} ${payload.length}`);
  }, 60_000);

  it('serves connections side by side, each with its own relay', async () => {
    const port = relayProxy.portOf(serviceKey(sessionId, 'digest'))!;
    const payloads = Array.from({ length: 6 }, (_, i) => randomBytes(1000 * (i + 1)));
    const answers = await Promise.all(payloads.map((payload) => exchange(port, payload)));
    expect(answers.map(String)).toEqual(payloads.map((p) => `${createHash('sha256').update(p).digest('hex')} ${p.length}`));
  }, 60_000);

  it('ends the client\'s connection when the app closes first, after what it sent', async () => {
    const port = await relayProxy.open({ key: serviceKey(sessionId, 'greet'), hostPort: 0, containerId, containerPort: 7101 });
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('end', () => {
        socket.end();
        resolve(text);
      });
      socket.on('error', reject);
    });
    expect(answer).toBe('hello, then nothing more\n');
  }, 30_000);

  it('ends a connection to a port nothing listens on in the kernel, without an answer', async () => {
    const port = await relayProxy.open({ key: serviceKey(sessionId, 'nothing'), hostPort: 0, containerId, containerPort: 7199 });
    expect((await exchange(port, Buffer.from('anyone?'))).length).toBe(0);
    expect(await relayProxy.listening(containerId, [7100, 7199, 7101])).toEqual([7100, 7101]);
  }, 30_000);

  it('keeps a listener opened again for the same target, and refuses from its close on', async () => {
    const key = serviceKey(sessionId, 'digest');
    const port = relayProxy.portOf(key)!;
    expect(await relayProxy.open({ key, hostPort: port, containerId, containerPort: 7100 })).toBe(port);
    expect(await relayProxy.close(key)).toBe(true);
    expect(await refused(port)).toBe(true);
    expect(await relayProxy.close(key)).toBe(false);
  });
});

describe('a node worker started again', () => {
  let harness: ApiHarness;
  let testEnv: Awaited<ReturnType<typeof connectTestEnv>>;
  const group = `svc-node-${randomUUID().slice(0, 8)}`;
  const sessions: string[] = [];

  beforeAll(async () => {
    testEnv = await connectTestEnv();
    harness = await startApiHarness(testEnv, infra, { COMPUTE_CREATE_WAIT_SECONDS: 60 });
  }, 60_000);
  afterAll(async () => {
    await removeComputeLeftovers(infra.docker, infra.config.SESSIONFLOW_INSTANCE, sessions, []);
    await infra.pool.query('DELETE FROM compute_sessions WHERE owner_id = $1', [harness.userId]);
    await infra.pool.query('DELETE FROM compute_nodes WHERE scaling_group = $1', [group]);
    await infra.pool.query('DELETE FROM compute_scaling_groups WHERE name = $1', [group]);
    await harness.stop();
    await testEnv.teardown();
  });

  it('opens its services\' listeners again, on their ports, and they serve', async () => {
    const user = { Authorization: `Bearer ${harness.userKey}` };
    let node = await startTestComputeNode(testEnv, infra, { group, name: `${group}-a` });
    try {
      const created = await request(harness.app).post('/api/v1/sessions').set(user).send({ image: 'python:3.11', scaling_group: group, resources: { cpu: '0.5', memory: '256M' } });
      sessions.push(created.body.id as string);
      expect(created.body.status).toBe('RUNNING');
      const service = await request(harness.app).post(`/api/v1/sessions/${created.body.id}/services`).set(user).send({ app_name: 'custom-web-app' }).expect(201);
      const port = service.body.host_port as number;
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);

      await node.stop();
      expect(await refused(port)).toBe(true);
      node = await startTestComputeNode(testEnv, infra, { group, name: `${group}-a` });
      await eventually(async () => (await refused(port) ? undefined : true));
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);

      await request(harness.app).delete(`/api/v1/sessions/${created.body.id}`).set(user).expect(200);
    } finally {
      await node.stop();
    }
  }, 180_000);
});
