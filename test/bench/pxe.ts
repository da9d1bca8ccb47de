import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { startApiHarness } from '../helpers/api';
import { openInfra } from '../helpers/infra';
import { randomMac, startPxeLab, writeRawImage } from '../helpers/pxeLab';
import { connectTestEnv } from '../helpers/temporal';
import { load, printTable, summarise, runBench } from './stats';

/**
 * PXE session figures on real software over loopback SSH: start and stop latency through the
 * api (start = POST until the session reads ACTIVE), 100 sessions started at once on 100
 * machines (dhcpd restarts counted, the hosts file checked), and list/stats with 1000
 * machines and 1000 sessions in the read model.
 */
async function main(): Promise<void> {
  process.env.SF_TEST_WORKFLOW_BUNDLE ??= require.resolve('../../workflow-bundle.js');
  const env = await connectTestEnv();
  const infra = openInfra();
  const api = await startApiHarness(env, infra);
  const lab = await startPxeLab(infra.pool);
  const server = api.app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/pxe`;
  const auth = { Authorization: `Bearer ${api.userKey}`, 'content-type': 'application/json' };
  const call = async (method: string, path: string, body?: unknown, status = 200) => {
    const res = await fetch(`${base}${path}`, { method, headers: auth, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (res.status !== status) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return JSON.parse(text);
  };
  let ipCounter = 0;
  const newMachine = async () => {
    const n = ipCounter++;
    return (await call('POST', '/machines', { name: `bench-${n}`, mac: randomMac(), ip: `10.99.${Math.floor(n / 250)}.${(n % 250) + 1}`, boot_server_id: lab.bootServerId }, 201)) as { id: string; mac: string };
  };
  const until = async (probe: () => Promise<boolean>) => {
    while (!(await probe())) await new Promise((r) => setTimeout(r, 25));
  };

  try {
    writeRawImage(lab, 'bench.img');
    const image = await call('POST', '/images', { name: 'bench', filename: 'bench.img', format: 'raw', boot_server_id: lab.bootServerId }, 202);
    await until(async () => (await call('GET', `/images/${image.id}`)).status === 'READY');

    // Sequential start → ACTIVE and stop → STOPPED.
    const starts: number[] = [];
    const stops: number[] = [];
    for (let i = 0; i < 20; i++) {
      const machine = await newMachine();
      const t0 = performance.now();
      const session = await call('POST', '/sessions/start', { machine_id: machine.id, image_id: image.id, session_type: 'DISKLESS_BOOT' }, 202);
      await until(async () => (await call('GET', `/sessions/${session.id}`)).status === 'ACTIVE');
      starts.push(performance.now() - t0);
      const t1 = performance.now();
      const stopped = await call('POST', `/sessions/${session.id}/stop`);
      if (stopped.status !== 'STOPPED') throw new Error(`stop ended ${stopped.status}`);
      stops.push(performance.now() - t1);
    }

    // 100 sessions at once on 100 machines.
    const machines = [];
    for (let i = 0; i < 100; i++) machines.push(await newMachine());
    const restartsBefore = lab.restarts();
    const t0 = performance.now();
    const sessions = await Promise.all(machines.map((m) => call('POST', '/sessions/start', { machine_id: m.id, image_id: image.id }, 202)));
    await until(async () => (await call('GET', '/sessions/stats')).active >= 100);
    const allActiveMs = performance.now() - t0;
    const restarts = lab.restarts() - restartsBefore;
    const hosts = readFileSync(lab.hostsFile, 'utf8');
    const onceEach = machines.every((m) => hosts.split(`hardware ethernet ${m.mac};`).length === 2);
    const entries = hosts.split('\n').filter((l) => /^host /.test(l)).length;
    execFileSync('dhcpd', ['-t', '-cf', lab.hostsFile], { stdio: 'ignore' });
    const t1 = performance.now();
    await Promise.all(sessions.map((s: { id: string }) => call('POST', `/sessions/${s.id}/stop`)));
    const allStoppedMs = performance.now() - t1;

    // The read model at 1000 machines and 1000 sessions.
    const { rows: [owner] } = await infra.pool.query<{ id: string }>('SELECT owner_id AS id FROM pxe_images WHERE id = $1', [image.id]);
    await infra.pool.query(
      `WITH m AS (
         INSERT INTO pxe_machines (owner_id, name, mac, ip, boot_mode, boot_server_id)
         SELECT $1, 'bulk-' || g, '52:54:01:' || lpad(to_hex(g / 65536), 2, '0') || ':' || lpad(to_hex((g / 256) % 256), 2, '0') || ':' || lpad(to_hex(g % 256), 2, '0'),
                '10.98.' || (g / 250) || '.' || (g % 250 + 1), 'bios', $2
           FROM generate_series(1, 880) g RETURNING id)
       INSERT INTO pxe_sessions (owner_id, machine_id, image_id, session_type, status, workflow_id, created_at)
       SELECT $1, id, $3, 'DISKLESS_BOOT', 'STOPPED', 'pxe/' || id, now() - random() * interval '30 days' FROM m`,
      [owner!.id, lab.bootServerId, image.id],
    );
    const stats = await call('GET', '/sessions/stats');
    const listPage = await load(300, 4, async (i) => void (await call('GET', `/sessions?page=${(i % 20) + 1}&page_size=50`)));
    const listFiltered = await load(300, 4, async () => void (await call('GET', '/sessions?status=STOPPED&page=3&page_size=50')));
    const statsLoad = await load(300, 4, async () => void (await call('GET', '/sessions/stats')));
    const { rows: [counts] } = await infra.pool.query<{ machines: number }>('SELECT count(*)::int AS machines FROM pxe_machines WHERE owner_id = $1', [owner!.id]);

    printTable('PXE sessions (loopback SSH, real tgtd, dhcpd -t, in.tftpd, Temporal dev server, PostgreSQL)', [
      { name: 'start → ACTIVE (sequential)', samples: starts, extra: 'seed: < 5 s' },
      { name: 'stop → STOPPED (sequential)', samples: stops, extra: 'seed: < 3 s' },
      { name: `GET /sessions page_size=50 (${stats.total} sessions)`, samples: listPage.samples, extra: `${Math.round(listPage.samples.length / (listPage.wallMs / 1000))} req/s, 4 in flight` },
      { name: 'GET /sessions?status=STOPPED page 3', samples: listFiltered.samples, extra: `${Math.round(listFiltered.samples.length / (listFiltered.wallMs / 1000))} req/s` },
      { name: 'GET /sessions/stats', samples: statsLoad.samples, extra: `${Math.round(statsLoad.samples.length / (statsLoad.wallMs / 1000))} req/s` },
    ]);
    console.log(`\n100 sessions started at once: all ACTIVE after ${(allActiveMs / 1000).toFixed(1)} s; dhcpd restarts ${restarts}; hosts file valid (dhcpd -t) with ${entries} entries, each MAC once: ${onceEach}`);
    console.log(`100 sessions stopped at once: all STOPPED after ${(allStoppedMs / 1000).toFixed(1)} s`);
    console.log(`read model: ${counts!.machines} machines, ${stats.total} sessions; start p50 ${summarise(starts).p50.toFixed(0)} ms, stop p50 ${summarise(stops).p50.toFixed(0)} ms; rss ${Math.round(process.memoryUsage().rss / 1e6)} MB (api + worker in one process)`);
  } finally {
    server.close();
    await api.stop();
    await lab.stop();
    await infra.close();
    await env.teardown();
  }
}

runBench(main);
