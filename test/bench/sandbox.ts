import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { startApiHarness } from '../helpers/api';
import { openInfra } from '../helpers/infra';
import { containersOfChat, discardChats } from '../helpers/sandbox';
import { connectTestEnv } from '../helpers/temporal';
import { load, printTable, summarise, runBench } from './stats';

/**
 * Chat-sandbox figures through the real api: ensure latency when a sandbox is created and when
 * it is reused, exec latency, and 100 chats ensured at once (time until all are ready).
 */
async function main(): Promise<void> {
  process.env.SF_TEST_WORKFLOW_BUNDLE ??= require.resolve('../../workflow-bundle.js');
  // Containers made here carry a bench instance label, never a running deployment's.
  process.env.SESSIONFLOW_INSTANCE ??= 'bench-sandbox';
  const env = await connectTestEnv();
  const infra = openInfra();
  // One user holds every chat of the benchmark (121 at the peak).
  const api = await startApiHarness(env, infra, { SANDBOX_TTL_SECONDS: 600, SANDBOX_MAX_PER_USER: 1000 });
  const server = api.app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const auth = { Authorization: `Bearer ${api.userKey}` };
  const chats: string[] = [];
  const newChat = () => {
    const chatId = randomUUID();
    chats.push(chatId);
    return chatId;
  };
  const call = async (method: string, path: string, expected: number[], body?: unknown) => {
    const res = await fetch(`${base}${path}`, { method, headers: { ...auth, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (!expected.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };
  const ensure = (chatId: string, expected = [200, 201]) => call('PUT', `/api/v1/chats/${chatId}/sandbox`, expected);

  try {
    const create = await load(20, 1, async () => void (await ensure(newChat(), [201])));
    const reusedChat = newChat();
    await ensure(reusedChat, [201]);
    const reuse = await load(200, 1, async () => void (await ensure(reusedChat, [200])));
    const reuse10 = await load(500, 10, async () => void (await ensure(reusedChat, [200])));
    const exec = await load(50, 1, async () => void (await call('POST', `/api/v1/chats/${reusedChat}/sandbox/exec`, [200], { code: 'print(1)' })));

    const burst = Array.from({ length: 100 }, newChat);
    const burstStarted = performance.now();
    const concurrent = await load(burst.length, burst.length, async (i) => void (await ensure(burst[i]!, [201])));
    const allReadyMs = performance.now() - burstStarted;
    const running = (await Promise.all(burst.map((chatId) => containersOfChat(infra.docker, infra.config.SESSIONFLOW_INSTANCE, chatId)))).filter((list) => list.length === 1 && list[0]!.State === 'running').length;

    const stop = await load(burst.length, 10, async (i) => void (await call('DELETE', `/api/v1/chats/${burst[i]}/sandbox`, [204])));

    printTable(`chat sandboxes under ${await infra.containerRuntime()} (loopback api, real Temporal dev server, PostgreSQL, Docker)`, [
      { name: 'PUT ensure → create (new chat)', samples: create.samples, extra: `errors ${create.errors}` },
      { name: 'PUT ensure → reuse, 1 in flight', samples: reuse.samples, extra: `errors ${reuse.errors}` },
      { name: 'PUT ensure → reuse, 10 in flight (one chat)', samples: reuse10.samples, extra: `${Math.round(reuse10.samples.length / (reuse10.wallMs / 1000))} req/s, errors ${reuse10.errors}` },
      { name: 'POST exec print(1)', samples: exec.samples, extra: `errors ${exec.errors}` },
      { name: '100 chats ensured at once (per request)', samples: concurrent.samples, extra: `errors ${concurrent.errors}` },
      { name: 'DELETE (stop), 10 in flight', samples: stop.samples, extra: `errors ${stop.errors}` },
    ]);
    console.log(`\n100 chats ensured concurrently: all ready in ${allReadyMs.toFixed(0)} ms, errors ${concurrent.errors}, running containers ${running}/100`);
    console.log(`ensure p50: create ${summarise(create.samples).p50.toFixed(0)} ms, reuse ${summarise(reuse.samples).p50.toFixed(1)} ms`);
  } finally {
    server.close();
    await discardChats(env.client, infra.docker, infra.config.SESSIONFLOW_INSTANCE, chats);
    await api.stop();
    await infra.close();
    await env.teardown();
  }
}

runBench(main);
