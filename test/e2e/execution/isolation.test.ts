import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { createUserKey } from '../../../api/platform/auth';
import { startApiHarness, type ApiHarness } from '../../helpers/api';
import { removeExecutionPools } from '../../helpers/executionPools';
import { openInfra, type Infra } from '../../helpers/infra';
import { connectTestEnv } from '../../helpers/temporal';

/**
 * One pooled container serves every user in turn (a cap of one): what one user's run leaves
 * anywhere writable must be gone before another's starts.
 */
let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
let otherKey: string;
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  api = await startApiHarness(env, infra, { USE_LOCAL_EXECUTOR: false, EXECUTION_READY_SESSIONS: 1, EXECUTION_MAX_CONTAINERS: 1 });
  ({ key: otherKey } = await createUserKey(infra.pool, `other-${randomUUID().slice(0, 8)}`, 'user', 'test'));
});
afterAll(async () => {
  await removeExecutionPools(env.client, infra, api.taskQueue);
  await api.stop();
  await infra.close();
  await env.teardown();
});

// The scripts start python3 and node under gVisor: the longest run allowed, so a loaded machine never cuts their last line.
const bash = (key: string, script: string, extra: Record<string, unknown> = {}) => request(api.app).post('/api/v2/execute')
  .set({ Authorization: `Bearer ${key}` }).send({ language: 'bash', version: '*', files: [{ content: script }], run_timeout: 15_000, ...extra });

/**
 * How many System V shared memory segments and message queues exist, found by id (IPC_STAT): gVisor
 * has no /proc/sysvipc, so `ipcs` lists none there even when they exist.
 */
const ipcCount = `python3 -c 'import ctypes; c = ctypes.CDLL(None); b = ctypes.create_string_buffer(512); print("ipc:%d" % sum((c.shmctl(i, 2, b) == 0) + (c.msgctl(i, 2, b) == 0) for i in range(256)))'`;

const plant = `
mkdir -p /work/node_modules/evil && echo 'module.exports = "planted"' > /work/node_modules/evil/index.js
mkdir -p /work/locked/inner && echo secret > /work/locked/inner/f && chmod 000 /work/locked/inner /work/locked
echo secret > /tmp/left; echo secret > /dev/shm/left
ipcmk --shmem 4096 >/dev/null && ipcmk --queue >/dev/null
( sleep 60 & ) ; cd /work && node -e 'console.log(require("evil"))'
${ipcCount}`;

const look = `
echo "work:$(ls -A /work | grep -vx "$(basename "$PWD")" | tr '\\n' ' ')"
echo "tmp:$(ls -A /tmp /dev/shm | grep -v ':$' | tr -d '\\n')"
${ipcCount}
echo "procs:$(ps -u nobody -o comm= | grep -c sleep)"
cd /work && node -e 'try { console.log(require("evil")) } catch { console.log("clean") }'`;

describe('a pooled execution container handed from one user to another', () => {
  it('keeps nothing of the first user\'s run: files anywhere writable, a planted node_modules, IPC objects, processes', async () => {
    const planted = await bash(api.userKey, plant).expect(200);
    // The plant worked inside its own run: these are real leftovers, not a failed setup.
    expect(planted.body.run.stdout).toBe('planted\nipc:2\n');

    const seen = await bash(otherKey, look).expect(200);
    expect(seen.headers['x-sessionflow-cold-start']).toBe('false');
    expect(seen.body.run.stdout).toBe('work:\ntmp:\nipc:0\nprocs:0\nclean\n');
  });

  it('keeps a session\'s files for its next execution, and nothing of them for the next user', async () => {
    await bash(api.userKey, 'echo kept > state.txt; echo secret > /tmp/left', { session_id: 'isolation' }).expect(200);
    const again = await bash(api.userKey, 'cat state.txt; ls -A /tmp | wc -l', { session_id: 'isolation' }).expect(200);
    expect(again.body.run.stdout).toBe('kept\n0\n');

    const seen = await bash(otherKey, look).expect(200);
    expect(seen.body.run.stdout).toBe('work:\ntmp:\nipc:0\nprocs:0\nclean\n');
  });
});
