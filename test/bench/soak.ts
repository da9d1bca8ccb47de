import { randomInt, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'pg';
import { caller, executePython, makeUsers, rssMb, sleep, until } from '../helpers/cluster';
import { randomMac, startPxeLab, writeRawImage } from '../helpers/pxeLab';
import { startSshServer } from '../helpers/sshd';
import { registerSshHost, TerminalClient } from '../helpers/terminal';

/**
 * Memory over time under mixed traffic (scripts/bench-soak.sh brings the default mode up
 * first): for SOAK_MINUTES (10), loops of every kind — Piston executions, chat sandboxes
 * (ensure, exec, stop), terminals (open, a command over the WebSocket, close), compute sessions
 * (create, a cell, destroy), PXE boots (start to ACTIVE, stop) and self-checks — against the api
 * and worker, whose resident memory is sampled every 15 s. Prints the samples, then the figure
 * that matters: api + worker after warm-up against the end, and the most either reached.
 */
const url = process.env.DEV_URL ?? 'http://127.0.0.1:8080';
const runDir = process.env.SF_RUN!;
const minutes = Number(process.env.SOAK_MINUTES ?? 10);
const adminKey = readFileSync(process.env.DEV_ADMIN_KEY_FILE!, 'utf8').trim();
const pid = (name: string) => Number(readFileSync(join(runDir, `${name}.pid`), 'utf8').trim());

interface Counts { [kind: string]: { ok: number; failed: number; lastError?: string } }
const counts: Counts = {};
async function count(kind: string, work: () => Promise<unknown>): Promise<void> {
  const entry = (counts[kind] ??= { ok: 0, failed: 0 });
  try {
    await work();
    entry.ok++;
  } catch (err) {
    entry.failed++;
    entry.lastError = (err as Error).message.slice(0, 200);
  }
}

async function main(): Promise<void> {
  const admin = caller(url, adminKey);
  const users = await makeUsers(url, adminKey, 6, `soak-${randomUUID().slice(0, 6)}`);
  const sshd = await startSshServer();
  const hostId = await registerSshHost(url, adminKey, sshd, `soak-${Date.now().toString(36)}`);
  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  const lab = await startPxeLab(pool);
  writeRawImage(lab, 'soak.img');
  const pxe = '/api/v1/pxe';
  const image = await users[5]!.call<{ id: string }>('POST', `${pxe}/images`, [202], { name: 'soak', filename: 'soak.img', format: 'raw', boot_server_id: lab.bootServerId });
  await until(async () => (await users[5]!.call<{ status: string }>('GET', `${pxe}/images/${image.id}`, [200])).status === 'READY', 60_000, 'the soak image READY');

  const ends = Date.now() + minutes * 60_000;
  const running = () => Date.now() < ends;
  const loop = async (every: number, step: () => Promise<void>) => {
    while (running()) {
      await step();
      await sleep(every);
    }
  };

  const samples: { at: number; api: number; worker: number }[] = [];
  const started = Date.now();
  const sample = () => samples.push({ at: (Date.now() - started) / 1000, api: rssMb(pid('api')), worker: rssMb(pid('worker')) });
  sample();

  await Promise.all([
    loop(15_000, async () => void sample()),
    // Executions: two users, back to back.
    ...users.slice(0, 2).map((user) => loop(0, () => count('execution', () => executePython(user, `print(${randomInt(1000)} * 2)`)))),
    loop(200, async () => {
      const user = users[2]!;
      const chatId = randomUUID();
      await count('sandbox', async () => {
        await user.call('PUT', `/api/v1/chats/${chatId}/sandbox`, [201]);
        await user.call('POST', `/api/v1/chats/${chatId}/sandbox/exec`, [200], { code: 'print(sum(range(100)))' });
        await user.call('DELETE', `/api/v1/chats/${chatId}/sandbox`, [204]);
      });
    }),
    loop(500, () => count('terminal', async () => {
      const session = await users[3]!.call<{ session_id: string; token: string }>('POST', '/api/v1/terminals', [200, 201], { host_id: hostId, mode: 'embedded' });
      const term = await TerminalClient.connect(url, session.session_id, session.token);
      await term.ready;
      term.type('echo soak-$((6*7))\n');
      await term.waitFor(/soak-42/);
      term.ws.close();
      await users[3]!.call('DELETE', `/api/v1/terminals/${session.session_id}`, [200, 204]);
    })),
    loop(1000, () => count('compute', async () => {
      const user = users[4]!;
      const session = await user.call<{ id: string }>('POST', '/api/v1/sessions', [201], { image: 'python:3.11', resources: { cpu: '0.5', memory: '256M' } });
      try {
        await user.call('POST', `/api/v1/sessions/${session.id}/execute`, [200], { code: 'result = 6 * 7' });
      } finally {
        await user.call('DELETE', `/api/v1/sessions/${session.id}`, [200, 202, 204]);
      }
    })),
    loop(500, () => count('pxe', async () => {
      const user = users[5]!;
      const mac = randomMac();
      const machine = await user.call<{ id: string }>('POST', `${pxe}/machines`, [201], { name: `soak-${mac.slice(-5)}`, mac, ip: `10.79.${randomInt(0, 255)}.${randomInt(1, 254)}`, boot_mode: 'bios', boot_server_id: lab.bootServerId });
      const session = await user.call<{ id: string }>('POST', `${pxe}/sessions/start`, [202], { machine_id: machine.id, image_id: image.id, session_type: 'DISKLESS_BOOT' });
      await until(async () => (await user.call<{ status: string }>('GET', `${pxe}/sessions/${session.id}`, [200])).status === 'ACTIVE', 60_000, 'ACTIVE');
      await user.call('POST', `${pxe}/sessions/${session.id}/stop`, [200]);
    })),
    loop(30_000, () => count('self-check', async () => {
      const check = await admin.call<{ id: string }>('POST', '/api/v1/admin/self-check', [202]);
      await until(async () => (await admin.call<{ status: string }>('GET', `/api/v1/admin/self-check/${check.id}`, [200])).status === 'PASSED', 60_000, 'PASSED');
    })),
  ]);
  sample();
  await lab.stop();
  await pool.end();
  await sshd.stop();

  console.log(`\nsoak: ${minutes} min of mixed traffic against the api and worker (${url}); resident memory (MiB)`);
  console.log(`${'t s'.padStart(6)}${'api'.padStart(8)}${'worker'.padStart(8)}${'sum'.padStart(8)}`);
  for (const s of samples) console.log(`${s.at.toFixed(0).padStart(6)}${s.api.toFixed(0).padStart(8)}${s.worker.toFixed(0).padStart(8)}${(s.api + s.worker).toFixed(0).padStart(8)}`);
  const sums = samples.map((s) => s.api + s.worker);
  const warm = samples.filter((s) => s.at >= 120).map((s) => s.api + s.worker);
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1);
  const third = Math.max(1, Math.floor(warm.length / 3));
  console.log(`\napi + worker: at most ${Math.max(...sums).toFixed(0)} MiB; after warm-up (2 min) the first third averaged ${mean(warm.slice(0, third)).toFixed(0)} MiB and the last third ${mean(warm.slice(-third)).toFixed(0)} MiB`);
  console.log('operations:', Object.entries(counts).map(([kind, c]) => `${kind} ${c.ok} ok${c.failed ? `, ${c.failed} failed (${c.lastError})` : ''}`).join('; '));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
