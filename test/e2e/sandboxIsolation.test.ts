import type { TestWorkflowEnvironment } from '@temporalio/testing';
import request from 'supertest';
import { createActivities } from '../../activities';
import { fitHostConfig } from '../../activities/shared/containerRuntime';
import { activityDepsFrom } from '../../workers/activityDeps';
import { startApiHarness, type ApiHarness } from '../helpers/api';
import { openInfra, type Infra } from '../helpers/infra';
import { containersOfChat, discardChats, eventsOfChat, trackedChats } from '../helpers/sandbox';
import { connectTestEnv } from '../helpers/temporal';

/**
 * What isolates a chat sandbox (issue 11), through HTTP against the real api, Temporal, Docker
 * and PostgreSQL: who the code runs as, where it may write and how much, what happens when its
 * container dies, and how many sandboxes one user may hold at once.
 */
const MiB = 1024 * 1024;
// Small limits make "writes without end" end quickly; the worker reads them from its config.
const limits = {
  SANDBOX_MEMORY_LIMIT_MB: 128,
  SANDBOX_PIDS_LIMIT: 48,
  SANDBOX_FILE_SIZE_LIMIT_BYTES: 8 * MiB,
  SANDBOX_WORKSPACE_BYTES: 16 * MiB,
  SANDBOX_TMP_BYTES: 4 * MiB,
};
const ttlSeconds = 120;
let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
const chats = trackedChats();
const chat = chats.next;

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  const config = { ...infra.config, ...limits };
  api = await startApiHarness(env, { ...infra, config, activities: createActivities(activityDepsFrom(config, infra)) }, { SANDBOX_TTL_SECONDS: ttlSeconds });
});
afterAll(async () => {
  await discardChats(env.client, infra.docker, infra.config.SESSIONFLOW_INSTANCE, chats.ids);
  await api.stop();
  await infra.close();
  await env.teardown();
});

const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });
const ensure = (chatId: string, harness = api) => request(harness.app).put(`/api/v1/chats/${chatId}/sandbox`).set(bearer(harness.userKey));
const exec = (chatId: string, body: object, harness = api) => request(harness.app).post(`/api/v1/chats/${chatId}/sandbox/exec`).set(bearer(harness.userKey)).send(body);
const shell = (chatId: string, code: string) => exec(chatId, { language: 'shell', code });
const containers = (chatId: string) => containersOfChat(infra.docker, infra.config.SESSIONFLOW_INSTANCE, chatId);

/**
 * Writes 1 MiB at a time, up to 256 MiB (far past every limit here), into one file or a new file
 * each time, and prints the errno that stopped it and how many MiB got written.
 */
const fill = `
import errno, sys
where, one_file = sys.argv[1], sys.argv[2] == "one"
chunk, written = b"x" * (1 << 20), 0
try:
    while written < 256:
        with open(f"{where}/fill-one" if one_file else f"{where}/fill-{written}", "ab") as f:
            f.write(chunk)
        written += 1
    print("no-error", written)
except OSError as e:
    print(errno.errorcode[e.errno], written)
`;
const fillResult = async (chatId: string, where: string, mode: 'one' | 'many') => {
  const res = await exec(chatId, { command: ['python3', '-c', fill, where, mode] }).expect(200);
  const [code, written] = String(res.body.stdout).trim().split(' ');
  return { code, written: Number(written) };
};

describe('a chat sandbox container', () => {
  it('runs code as a non-root user with no capabilities, no new privileges and a read-only root', async () => {
    const chatId = chat();
    await ensure(chatId).expect(201);
    // prctl(PR_GET_NO_NEW_PRIVS), not /proc/self/status: gVisor's has no NoNewPrivs line. /var/tmp is
    // world-writable, so only a read-only root stops the touch (in / gVisor checks permissions first).
    const noNewPrivs = 'python3 -c "import ctypes; print(\'NoNewPrivs:\', ctypes.CDLL(None).prctl(39, 0, 0, 0, 0))"';
    const res = await shell(chatId, `id -u; grep -E "^(CapEff|CapPrm|CapBnd):" /proc/self/status; ${noNewPrivs}; touch /var/tmp/probe 2>&1 || true`).expect(200);
    const [uid, ...rest] = String(res.body.stdout).trim().split('\n');
    expect(uid).not.toBe('0');
    expect(uid).toBe('65534');
    expect(rest.map((line) => line.replace(/\s+/g, ' '))).toEqual([
      'CapPrm: 0000000000000000', 'CapEff: 0000000000000000', 'CapBnd: 0000000000000000', 'NoNewPrivs: 1',
      expect.stringContaining('Read-only file system'),
    ]);
  });

  it('is bounded by the configured memory (swap included), processes, file size and writable area', async () => {
    const chatId = chat();
    const { body } = await ensure(chatId).expect(201);
    const { HostConfig } = await infra.docker.getContainer(body.container_id).inspect();
    // As configured, fitted to the runtime (under gVisor its kernel's share on top, the process limit inside it).
    expect(HostConfig).toMatchObject(fitHostConfig(await infra.containerRuntime(), {
      Memory: 128 * MiB, MemorySwap: 128 * MiB, PidsLimit: 48, ReadonlyRootfs: true,
      Ulimits: [{ Name: 'fsize', Soft: 8 * MiB, Hard: 8 * MiB }],
    }));
    expect(HostConfig.LogConfig).toMatchObject({ Type: 'none' });
    const df = await shell(chatId, 'df -B1 --output=target,size /workspace /tmp /dev/shm | tail -n +2').expect(200);
    expect(String(df.body.stdout).trim().split('\n').map((line) => line.trim().split(/\s+/))).toEqual([
      ['/workspace', String(16 * MiB)], ['/tmp', String(4 * MiB)], ['/dev/shm', String(4 * MiB)],
    ]);
  });

  it('ends writes without end with EFBIG or ENOSPC inside the sandbox, keeps nothing on the engine, and the api answers normally', async () => {
    const chatId = chat();
    const { body } = await ensure(chatId).expect(201);

    // One file grows until the file-size limit; many files until the workspace is full.
    expect(await fillResult(chatId, '/workspace', 'one')).toEqual({ code: 'EFBIG', written: 8 });
    const many = await fillResult(chatId, '/workspace', 'many');
    expect(many.code).toBe('ENOSPC');
    // The 8 MiB file is still there: at most the other 8 fit.
    expect(many.written).toBeLessThanOrEqual(8);
    for (const where of ['/tmp', '/dev/shm']) {
      const other = await fillResult(chatId, where, 'many');
      expect([where, other.code]).toEqual([where, 'ENOSPC']);
      expect(other.written).toBeLessThanOrEqual(4);
    }
    expect((await fillResult(chatId, '/var/tmp', 'many')).code).toBe('EROFS');
    // Output written to the container's own stdout would land in the engine's log files.
    await shell(chatId, 'head -c 4000000 /dev/zero | tr "\\0" x > /proc/1/fd/1').expect(200);

    // The sandbox is full, not broken; the api and the engine are untouched.
    await request(api.app).get('/readyz').expect(200);
    expect((await shell(chatId, 'rm -f fill-*; echo ok').expect(200)).body).toMatchObject({ stdout: 'ok\n', exit_code: 0 });
    const [listed] = await infra.docker.listContainers({ all: true, size: true, filters: { id: [body.container_id] } });
    expect((listed as { SizeRw?: number } | undefined)?.SizeRw ?? 0).toBeLessThan(MiB);
    const container = infra.docker.getContainer(body.container_id);
    const logged = await container.logs({ stdout: true, stderr: true, follow: false }).then((out) => out.length, () => 0);
    expect(logged).toBe(0);
  });
});

describe('a sandbox whose container died', () => {
  it('answers the next exec with 409 SandboxLost, not 500, and the next ensure makes a working sandbox', async () => {
    const chatId = chat();
    const first = await ensure(chatId).expect(201);
    await infra.docker.getContainer(first.body.container_id).kill();

    const lost = await exec(chatId, { code: 'print(1)' });
    expect([lost.status, lost.body.code]).toEqual([409, 'SandboxLost']);
    await exec(chatId, { code: 'print(1)' }).expect(409);

    const replacement = await ensure(chatId).expect(201);
    expect(replacement.body).toMatchObject({ reused: false, status: 'RUNNING' });
    expect(replacement.body.session_id).not.toBe(first.body.session_id);
    expect((await exec(chatId, { code: 'print(6*7)' }).expect(200)).body).toMatchObject({ stdout: '42\n', exit_code: 0 });
    expect((await containers(chatId)).map((c) => c.Id)).toEqual([replacement.body.container_id]);
    expect((await eventsOfChat(infra.pool, chatId)).map((e) => [e.event, e.session_id])).toEqual([
      ['sandbox_created', first.body.session_id],
      ['sandbox_lost', first.body.session_id],
      ['sandbox_created', replacement.body.session_id],
    ]);
  });

  it('answers an exec that exhausts the sandbox\'s memory without a 500: under gVisor, whose whole sandbox the host kills, 409 SandboxLost', async () => {
    const chatId = chat();
    await ensure(chatId).expect(201);
    // Far past the limit, gVisor's share on top included; every page written (a zeroed bytearray may
    // never be touched).
    const hog = await exec(chatId, { code: "x = b'\\x01' * (1024 * 1024 * 1024)\nprint(len(x))", timeout_ms: 3000 });
    if ((await infra.containerRuntime()) === 'runsc') {
      expect([hog.status, hog.body.code]).toEqual([409, 'SandboxLost']);
      expect((await ensure(chatId).expect(201)).body).toMatchObject({ reused: false, status: 'RUNNING' });
    } else {
      // runc's OOM killer takes the program only.
      expect([hog.status, hog.body.exit_code]).toEqual([200, 137]);
    }
  });

  it('is replaced by the next ensure instead of being handed out again', async () => {
    const chatId = chat();
    const first = await ensure(chatId).expect(201);
    await infra.docker.getContainer(first.body.container_id).remove({ force: true });

    const replacement = await ensure(chatId).expect(201);
    expect(replacement.body).toMatchObject({ reused: false, status: 'RUNNING' });
    expect(replacement.body.container_id).not.toBe(first.body.container_id);
    expect((await exec(chatId, { code: 'print(6*7)' }).expect(200)).body.stdout).toBe('42\n');
    const { rows } = await infra.pool.query('SELECT status, stop_reason FROM sandboxes WHERE session_id = $1', [first.body.session_id]);
    expect(rows).toEqual([{ status: 'STOPPED', stop_reason: 'lost' }]);
  });
});

describe('the per-user limit on live sandboxes', () => {
  const max = 2;
  let capped: ApiHarness;
  beforeAll(async () => {
    capped = await startApiHarness(env, infra, { SANDBOX_TTL_SECONDS: ttlSeconds, SANDBOX_MAX_PER_USER: max });
  });
  afterAll(() => capped.stop());

  it('admits N of N+k concurrent creates and answers the k others 429 SandboxQuotaExceeded with Retry-After, leaving nothing of them', async () => {
    const extra = 4;
    const chatIds = Array.from({ length: max + extra }, chat);
    const responses = await Promise.all(chatIds.map((chatId) => ensure(chatId, capped)));
    const created = responses.filter((res) => res.status === 201);
    const refused = responses.filter((res) => res.status === 429);
    expect([created.length, refused.length]).toEqual([max, extra]);
    for (const res of refused) {
      expect(res.body).toMatchObject({ code: 'SandboxQuotaExceeded', limit: max });
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(ttlSeconds);
    }
    const running = (await Promise.all(chatIds.map(containers))).flat();
    expect(running.map((c) => c.Id).sort()).toEqual(created.map((res) => res.body.container_id).sort());
    const refusedChats = chatIds.filter((_, i) => responses[i]!.status === 429);
    const { rows } = await infra.pool.query('SELECT count(*)::int AS n FROM sandboxes WHERE chat_id = ANY($1::uuid[])', [refusedChats]);
    expect(rows).toEqual([{ n: 0 }]);

    // At the limit, the user's own sandboxes are still reused; another user is not limited by them.
    const admitted = chatIds.find((_, i) => responses[i]!.status === 201)!;
    expect((await ensure(admitted, capped).expect(200)).body.reused).toBe(true);
    const neighbour = await startApiHarness(env, infra, { SANDBOX_TTL_SECONDS: ttlSeconds, SANDBOX_MAX_PER_USER: max, TEMPORAL_TASK_QUEUE: capped.taskQueue });
    try {
      await ensure(chat(), neighbour).expect(201);
    } finally {
      await neighbour.stop();
    }
    // A stopped sandbox frees its place.
    await request(capped.app).delete(`/api/v1/chats/${admitted}/sandbox`).set(bearer(capped.userKey)).expect(204);
    await ensure(refusedChats[0]!, capped).expect(201);
  });
});
