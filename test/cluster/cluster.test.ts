import { Connection, Client } from '@temporalio/client';
import { randomInt, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Pool } from 'pg';
import { randomMac, startPxeLab, writeRawImage, type PxeLab } from '../helpers/pxeLab';
import { startSshServer, type SshServer } from '../helpers/sshd';
import { registerSshHost, TerminalClient } from '../helpers/terminal';
import { caller, clusterProcess, clusterSettings, executePython, makeUsers, until, type Caller } from '../helpers/cluster';

/**
 * The scenarios of every kind against cluster mode as scripts/up.sh --cluster brings it up: the
 * Temporal server on PostgreSQL, two workers, two api processes behind nginx — run by
 * scripts/test-cluster.sh (part of .ci/run). Requests go through the proxy unless a scenario
 * needs one api process in particular; a worker killed and an api process restarted in the
 * middle of a burst lose nothing.
 */
const cluster = clusterSettings();
const admin = caller(cluster.url, cluster.adminKey);
let users: Caller[];
let temporal: Client;

beforeAll(async () => {
  users = await makeUsers(cluster.url, cluster.adminKey, 12);
  temporal = new Client({ connection: await Connection.connect({ address: cluster.temporalAddress }) });
});
afterAll(async () => {
  await temporal.connection.close();
});

const newChat = () => randomUUID();

describe('cluster mode', () => {
  it('has two api processes behind the proxy, each ready', async () => {
    expect(cluster.apiUrls).toHaveLength(2);
    for (const url of [cluster.url, ...cluster.apiUrls]) expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it('runs a self-check that passes, listed in the cluster\'s Temporal by its search attributes', async () => {
    const started = await admin.call<{ id: string; web_ui: string }>('POST', '/api/v1/admin/self-check', [202]);
    const report = await until(async () => {
      const r = await admin.call<{ status: string }>('GET', `/api/v1/admin/self-check/${started.id}`, [200]);
      return r.status !== 'RUNNING' && r;
    }, 60_000, 'the self-check');
    expect(report.status).toBe('PASSED');
    const listed = await until(async () => {
      const found = [];
      for await (const w of temporal.workflow.list({ query: `SessionKind='self-check' AND WorkflowId='self-check/${started.id}'` })) found.push(w.workflowId);
      return found.length > 0 && found;
    }, 20_000, 'the self-check in visibility');
    expect(listed).toEqual([`self-check/${started.id}`]);
  });

  it('executes code through either api process and through the proxy', async () => {
    const [user] = users;
    for (const base of [...cluster.apiUrls, cluster.url]) {
      const answer = await executePython(user!, 'print(sum(range(1000)))', base);
      expect(answer.run).toMatchObject({ stdout: '499500\n', code: 0 });
    }
  });

  it('keeps a chat sandbox one, whichever api process the chat\'s requests reach', async () => {
    const user = users[1]!;
    const chatId = newChat();
    const [first, second] = cluster.apiUrls;
    const created = await user.call<{ session_id: string }>('PUT', `/api/v1/chats/${chatId}/sandbox`, [201], undefined, first);
    const reused = await user.call<{ session_id: string }>('PUT', `/api/v1/chats/${chatId}/sandbox`, [200], undefined, second);
    expect(reused.session_id).toBe(created.session_id);
    await user.call('POST', `/api/v1/chats/${chatId}/sandbox/exec`, [200], { code: 'open("note", "w").write("kept")' }, first);
    const read = await user.call<{ stdout: string }>('POST', `/api/v1/chats/${chatId}/sandbox/exec`, [200], { code: 'print(open("note").read())' }, second);
    expect(read.stdout).toBe('kept\n');
    await user.call('DELETE', `/api/v1/chats/${chatId}/sandbox`, [204]);
  });

  describe('terminals', () => {
    let sshd: SshServer;
    beforeAll(async () => {
      sshd = await startSshServer();
    });
    afterAll(async () => {
      await sshd.stop();
    });

    it('opens a terminal on one api process and drives its shell over a WebSocket through nginx', async () => {
      const hostId = await registerSshHost(cluster.apiUrls[0]!, cluster.adminKey, sshd, `cluster-${Date.now().toString(36)}`);
      const session = await users[2]!.call<{ session_id: string; token: string }>('POST', '/api/v1/terminals', [201], { host_id: hostId, mode: 'embedded' }, cluster.apiUrls[1]);
      const term = await TerminalClient.connect(cluster.url, session.session_id, session.token);
      await term.ready;
      term.type('echo cluster-$((6*7))\n');
      await term.waitFor(/cluster-42/);
      term.ws.close();
      expect((await term.closed).code).toBeGreaterThan(0);
    });
  });

  it('creates a compute session on the compute node, runs a cell in its kernel and destroys it', async () => {
    const user = users[3]!;
    const session = await user.call<{ id: string; status: string }>('POST', '/api/v1/sessions', [201], { image: 'python:3.11', resources: { cpu: '0.5', memory: '256M' } });
    try {
      expect(session.status).toBe('RUNNING');
      const cell = await user.call<{ stdout: string; result: number }>('POST', `/api/v1/sessions/${session.id}/execute`, [200], { code: 'print("hi")\nresult = 6 * 7' }, cluster.apiUrls[1]);
      expect(cell).toMatchObject({ stdout: 'hi\n', result: 42 });
    } finally {
      await user.call('DELETE', `/api/v1/sessions/${session.id}`, [200, 202, 204]);
    }
  });

  describe('PXE boots', () => {
    // The boot server is a lab of real tgtd and in.tftpd reached over a real sshd, registered in
    // cluster mode's own database; whichever worker runs the saga drives it over SSH.
    let pool: Pool;
    let lab: PxeLab;
    beforeAll(async () => {
      pool = new Pool({ connectionString: process.env.CLUSTER_DATABASE_URL, max: 2 });
      lab = await startPxeLab(pool);
    });
    afterAll(async () => {
      await lab?.stop();
      await pool.end();
    });

    it('starts a diskless boot to ACTIVE on the boot server, and stops it', async () => {
      const user = users[4]!;
      const base = '/api/v1/pxe';
      writeRawImage(lab, 'cluster-disk.img');
      const image = await user.call<{ id: string }>('POST', `${base}/images`, [202], { name: 'cluster-disk', filename: 'cluster-disk.img', format: 'raw', boot_server_id: lab.bootServerId });
      await until(async () => (await user.call<{ status: string }>('GET', `${base}/images/${image.id}`, [200])).status === 'READY', 60_000, 'the image READY');
      const mac = randomMac();
      const machine = await user.call<{ id: string }>('POST', `${base}/machines`, [201], { name: `cluster-${mac.slice(-5)}`, mac, ip: `10.78.${randomInt(0, 255)}.${randomInt(1, 254)}`, boot_mode: 'bios', boot_server_id: lab.bootServerId });
      const started = await user.call<{ id: string }>('POST', `${base}/sessions/start`, [202], { machine_id: machine.id, image_id: image.id, session_type: 'DISKLESS_BOOT' }, cluster.apiUrls[0]);
      const settled = await until(async () => {
        const session = await user.call<{ status: string }>('GET', `${base}/sessions/${started.id}`, [200], undefined, cluster.apiUrls[1]);
        return session.status !== 'STARTING' && session;
      }, 120_000, 'the PXE session settled');
      expect(settled.status).toBe('ACTIVE');
      expect(readFileSync(lab.hostsFile, 'utf8')).toContain(mac);
      const script = await user.call<{ iscsi: { target_iqn: string } }>('GET', `${base}/machines/${machine.id}/boot-script`, [200]);
      expect(lab.targets()).toContain(script.iscsi.target_iqn);
      const stopped = await user.call<{ status: string }>('POST', `${base}/sessions/${started.id}/stop`, [200]);
      expect(stopped.status).toBe('STOPPED');
      expect(readFileSync(lab.hostsFile, 'utf8')).not.toContain(mac);
    });
  });

  /** 12 users, each: execute, ensure a sandbox, execute — 36 requests, 12 in flight. */
  async function burst(during: () => Promise<void>): Promise<{ ok: number; failures: string[] }> {
    const failures: string[] = [];
    let ok = 0;
    const chats: { user: Caller; chatId: string }[] = [];
    const step = async (work: () => Promise<unknown>) => {
      try {
        await work();
        ok++;
      } catch (err) {
        failures.push((err as Error).message);
      }
    };
    await Promise.all([
      during(),
      ...users.map(async (user) => {
        const chatId = newChat();
        chats.push({ user, chatId });
        await step(() => executePython(user, 'print(6 * 7)'));
        await step(() => user.call('PUT', `/api/v1/chats/${chatId}/sandbox`, [201]));
        await step(() => executePython(user, 'print(7 * 6)'));
      }),
    ]);
    await Promise.all(chats.map(({ user, chatId }) => user.call('DELETE', `/api/v1/chats/${chatId}/sandbox`, [204, 404]).catch(() => undefined)));
    return { ok, failures };
  }

  it('loses no request when a worker is killed (SIGKILL) in the middle of a burst', async () => {
    const victim = clusterProcess(cluster.runDir, 'cluster-worker-2');
    try {
      const outcome = await burst(async () => {
        await new Promise((resolve) => setTimeout(resolve, 500));
        victim.kill('SIGKILL');
      });
      expect(outcome).toEqual({ ok: 36, failures: [] });
    } finally {
      await victim.exited();
      victim.respawn();
    }
  });

  it('loses no request when an api process restarts in the middle of a burst', async () => {
    const restarted = clusterProcess(cluster.runDir, 'cluster-api-1');
    const outcome = await burst(async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      restarted.kill('SIGTERM');
      await restarted.exited();
      restarted.respawn();
    });
    expect(outcome).toEqual({ ok: 36, failures: [] });
    await until(async () => (await fetch(`${cluster.apiUrls[0]}/readyz`)).status === 200, 60_000, 'the restarted api process');
  });
});
