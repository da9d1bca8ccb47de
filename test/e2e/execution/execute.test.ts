import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { promisify } from 'node:util';
import request from 'supertest';
import { createApp } from '../../../api/platform/app';
import { makePoolWorkflowId, poolStateQuery } from '../../../domain/execution/execution';
import { createLogger } from '../../../platform/logger';
import { startApiHarness, type ApiHarness } from '../../helpers/api';
import { removeExecutionPools } from '../../helpers/executionPools';
import { openInfra, type Infra } from '../../helpers/infra';
import { connectTestEnv } from '../../helpers/temporal';

let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  // Requests past a user's in-flight share wait for a container: long enough for a loaded machine (the 429 is tested apart).
  api = await startApiHarness(env, infra, { USE_LOCAL_EXECUTOR: false, EXECUTION_READY_SESSIONS: 1, EXECUTION_ACQUIRE_WAIT_MS: 30_000 });
});
afterAll(async () => {
  await removeExecutionPools(env.client, infra, api.taskQueue);
  await api.stop();
  await infra.close();
  await env.teardown();
});

const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });
const execute = (body: Record<string, unknown>, key = api.userKey) =>
  request(api.app).post('/api/v2/execute').set(bearer(key)).send({ language: 'python', version: '3', ...body });
const python = (content: string, extra: Record<string, unknown> = {}) => execute({ files: [{ content }], ...extra });

describe('GET /api/v2/runtimes', () => {
  it('lists Python 3, Node.js, Bash and C with Piston fields', async () => {
    const { body } = await request(api.app).get('/api/v2/runtimes').set(bearer(api.userKey)).expect(200);
    expect(body).toEqual(expect.arrayContaining([
      expect.objectContaining({ language: 'python', version: expect.stringMatching(/^3\./), aliases: expect.arrayContaining(['py']) }),
      expect.objectContaining({ language: 'javascript' }), expect.objectContaining({ language: 'bash' }), expect.objectContaining({ language: 'c' }),
    ]));
  });

  it('needs an API key', async () => {
    await request(api.app).get('/api/v2/runtimes').expect(401);
  });
});

describe('POST /api/v2/execute (seed 001)', () => {
  it('answers with every Piston field, names the docker executor and shows the execution in Temporal', async () => {
    const res = await python('print("Hello, World!")').expect(200);
    expect(res.headers['x-sessionflow-executor']).toBe('docker');
    expect(res.body).toEqual({
      language: 'python', version: '3.11.2',
      run: { stdout: 'Hello, World!\n', stderr: '', output: 'Hello, World!\n', code: 0, signal: null, message: null, status: null, cpu_time: expect.any(Number), wall_time: expect.any(Number), memory: expect.any(Number) },
    });
    const described = await env.client.workflow.getHandle(`exec/${res.headers['x-sessionflow-request-id']}`).describe();
    expect(described.status.name).toBe('COMPLETED');
    expect(described.typedSearchAttributes.toJSON()).toEqual(expect.arrayContaining([
      expect.objectContaining({ key: expect.objectContaining({ name: 'SessionKind' }), value: 'execution' }),
      expect.objectContaining({ key: expect.objectContaining({ name: 'Runtime' }), value: 'python' }),
      expect.objectContaining({ key: expect.objectContaining({ name: 'OwnerId' }), value: api.userId }),
    ]));
  });

  it('serves 5 sequential requests correctly', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await python(`print(${i} * 7)`).expect(200);
      expect(res.body.run.stdout).toBe(`${i * 7}\n`);
    }
  });

  it('serves 10 concurrent requests correctly, each with its own answer', async () => {
    const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => python('import sys; print(int(sys.stdin.read()) ** 2)', { stdin: String(i) })));
    expect(responses.map((r) => [r.status, r.body.run?.stdout])).toEqual(Array.from({ length: 10 }, (_, i) => [200, `${i * i}\n`]));
  });

  it('rejects a bad request with 400 and a message, an unknown runtime too', async () => {
    const bad = await execute({ files: [] }).expect(400);
    expect(bad.body).toMatchObject({ code: 'ValidationFailed', message: expect.any(String) });
    const unknown = await execute({ language: 'cobol', files: [{ content: 'x' }] }).expect(400);
    expect(unknown.body).toMatchObject({ code: 'RuntimeNotFound', message: 'cobol-3 runtime is unknown' });
    const tooLong = await python('print(1)', { run_timeout: 10 ** 7 }).expect(400);
    expect(tooLong.body.message).toMatch(/run_timeout/);
  });
});

describe('isolation', () => {
  it('runs a program under gVisor\'s kernel, not the host\'s', async () => {
    const res = await python('import platform; print(platform.release())').expect(200);
    expect(res.body.run.stdout).toBe('4.4.0\n');
  });

  it('gives a program no network but loopback', async () => {
    const res = await python('import os; print(sorted(os.listdir("/sys/class/net")))').expect(200);
    expect(res.body.run.stdout).toBe("['lo']\n");
  });

  it('runs as a non-root user on a read-only root', async () => {
    const res = await python('import os\nprint(os.getuid())\nopen("/etc/x", "w")').expect(200);
    expect(res.body.run).toMatchObject({ stdout: '65534\n', status: 'RE', stderr: expect.stringMatching(/Read-only file system|Permission denied/) });
  });

  it('leaves a later stateless execution no files and no processes of an earlier one', async () => {
    const marker = randomUUID();
    await python(`import subprocess\nopen("left-${marker}", "w").write("x")\nopen("/tmp/left-${marker}", "w").write("x")\nsubprocess.Popen(["sleep", "30"], start_new_session=True)`).expect(200);
    const probe = `import os
mine = [p for p in os.listdir("/proc") if p.isdigit() and os.stat("/proc/" + p).st_uid == os.getuid() and int(p) != os.getpid() and int(p) != os.getppid()]
cmds = [open("/proc/%s/cmdline" % p, "rb").read() for p in mine]
print(sorted(os.listdir("/tmp")), [c for c in cmds if b"sleep" in c], [f for f in os.listdir("/work") if "${marker}" in f], os.listdir("."))`;
    for (let i = 0; i < 3; i++) {
      const res = await python(probe).expect(200);
      expect(res.body.run.stdout).toBe("[] [] [] ['main.py']\n");
    }
  });

  it('contains a fork bomb and serves the next request', async () => {
    const bomb = await python('import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass', { run_timeout: 1000 }).expect(200);
    expect(['TO', 'SG']).toContain(bomb.body.run.status);
    const after = await python('print("still here")').expect(200);
    expect(after.body.run.stdout).toBe('still here\n');
  });

  it('caps endless output and says OL', async () => {
    const res = await python('while True:\n    print("x" * 1000)').expect(200);
    expect(res.body.run.status).toBe('OL');
    expect(res.body.run.stdout.length).toBe(65536);
  });

  it('kills time.sleep(60) at a run_timeout of 1 s with SIGKILL and says TO', async () => {
    const res = await python('import time\ntime.sleep(60)', { run_timeout: 1000 }).expect(200);
    expect(res.body.run).toMatchObject({ status: 'TO', signal: 'SIGKILL', code: null });
  });
});

describe('a pool container found dead', () => {
  it('is passed over for another container before the job reaches it, and retired', async () => {
    await python('print("warm")').expect(200);
    const pool = env.client.workflow.getHandle(makePoolWorkflowId(api.taskQueue, 'python'));
    // The pool hands out its first ready container next: that one dies first.
    const dead = (await pool.query(poolStateQuery)).containers.find((c) => c.state === 'ready')!.containerId;
    await infra.docker.getContainer(dead).kill();

    const res = await python('print("served")').expect(200);
    expect(res.body.run.stdout).toBe('served\n');
    expect((await pool.query(poolStateQuery)).containers.map((c) => c.containerId)).not.toContain(dead);
  });
});

describe('sessions (session_id)', () => {
  it('returns a session to its container with its files, and gives another user a different session', async () => {
    const sessionId = `s-${randomUUID()}`;
    const first = await python('open("notes.txt", "w").write("kept")\nprint("written")', { session_id: sessionId }).expect(200);
    expect(first.body.run.stdout).toBe('written\n');
    const second = await python('print(open("notes.txt").read())', { session_id: sessionId }).expect(200);
    expect(second.body.run.stdout).toBe('kept\n');
    expect(second.headers['x-sessionflow-cold-start']).toBe('false');
    const other = await execute({ files: [{ content: 'import os; print(os.path.exists("notes.txt"))' }], session_id: sessionId }, api.adminKey).expect(200);
    expect(other.body.run.stdout).toBe('False\n');
  });
});

describe('a pool with a short cooldown and one container', () => {
  let small: ApiHarness;
  beforeAll(async () => {
    small = await startApiHarness(env, infra, { USE_LOCAL_EXECUTOR: false, EXECUTION_READY_SESSIONS: 0, EXECUTION_MAX_CONTAINERS: 1, EXECUTION_COOLDOWN_SECONDS: 2, EXECUTION_ACQUIRE_WAIT_MS: 300 });
  });
  afterAll(async () => {
    await removeExecutionPools(env.client, infra, small.taskQueue);
    await small.stop();
  });
  const run = (content: string, extra: Record<string, unknown> = {}) => request(small.app).post('/api/v2/execute').set(bearer(small.userKey)).send({ language: 'python', version: '3', files: [{ content }], ...extra });

  it('answers 429 PoolExhausted with Retry-After when every container is busy past the wait', async () => {
    // supertest sends on then(): start the long run now.
    const busy = run('import time; time.sleep(2.5)', { run_timeout: 4000 }).then((res) => res);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const refused = await run('print(1)').expect(429);
    expect(refused.body).toMatchObject({ code: 'PoolExhausted', message: expect.any(String) });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await busy).status).toBe(200);
  });

  it('starts a session afresh after its cooldown, in a new container', async () => {
    const sessionId = `cool-${randomUUID()}`;
    await run('open("f", "w").write("1")', { session_id: sessionId }).expect(200);
    const pool = env.client.workflow.getHandle(makePoolWorkflowId(small.taskQueue, 'python'));
    // The pool retires the idle session container once the 2 s cooldown has passed.
    for (let i = 0; i < 100 && (await pool.query(poolStateQuery)).containers.length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await pool.query(poolStateQuery)).containers).toEqual([]);
    const later = await run('import os; print(os.path.exists("f"))', { session_id: sessionId }).expect(200);
    expect(later.body.run.stdout).toBe('False\n');
    expect(later.headers['x-sessionflow-cold-start']).toBe('true');
  });
});

describe('the npm piston-client', () => {
  let server: Server;
  beforeAll(async () => {
    server = api.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('works unchanged against the api, with the key as the Basic password', async () => {
    const { port } = server.address() as AddressInfo;
    const script = `import piston from 'piston-client';
const client = piston({ server: 'http://user:${api.userKey}@127.0.0.1:${port}' });
const result = await client.execute('python', 'import sys; print("piston", sys.argv[1:])');
console.log(JSON.stringify(result));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd() });
    expect(JSON.parse(stdout)).toMatchObject({ language: 'python', version: '3.11.2', run: { stdout: "piston ['1', '2', '3']\n", code: 0 } });
  });
});

describe('when the Docker engine does not answer', () => {
  it('answers 503 DependencyUnavailable with Retry-After and never runs the program on the host instead', async () => {
    const down = { ping: () => Promise.reject(new Error('connect ECONNREFUSED /var/run/docker.sock (injected)')) } as unknown as Docker;
    const app = createApp({
      config: { ...infra.config, TEMPORAL_TASK_QUEUE: api.taskQueue, USE_LOCAL_EXECUTOR: false },
      temporal: env.client, pool: infra.pool, docker: down, log: createLogger('silent', 'docker-down-test'),
    });
    const marker = join(tmpdir(), `sf-host-marker-${randomUUID()}`);
    const res = await request(app).post('/api/v2/execute').set(bearer(api.userKey))
      .send({ language: 'python', version: '3', files: [{ content: `open(${JSON.stringify(marker)}, "w").write("ran on the host")` }] })
      .expect(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body).toMatchObject({ code: 'DependencyUnavailable', dependency: 'docker' });
    expect(existsSync(marker)).toBe(false);
  });
});
