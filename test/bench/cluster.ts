import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { clusterProcess, clusterSettings, executePython, makeUsers, rssMb, sleep, type Caller, type ClusterProcess } from '../helpers/cluster';
import { load, printTable, summarise } from './stats';

/**
 * Cluster mode from outside, as its users meet it (scripts/bench-cluster.sh brings it up first):
 * the Temporal server on PostgreSQL, N workers and M api processes behind nginx. Prints
 * executions and sandbox ensures per second with 2 workers and then 1, warm execution latency
 * beside the dev server's (when its api answers), and what losing a worker costs: a burst of
 * executions and sandbox ensures in flight, one worker killed with SIGKILL in the middle of it,
 * every request's outcome and the time from the kill to the last answer.
 */
const cluster = clusterSettings();
const devUrl = process.env.DEV_URL;

const execute = (user: Caller) => executePython(user, 'print(6 * 7)');

const chats: { user: Caller; chatId: string }[] = [];
async function ensureSandbox(user: Caller): Promise<void> {
  const chatId = randomUUID();
  chats.push({ user, chatId });
  await user.call('PUT', `/api/v1/chats/${chatId}/sandbox`, [201]);
}
async function dropSandboxes(): Promise<void> {
  await load(chats.length, 8, async (i) => void (await chats[i]!.user.call('DELETE', `/api/v1/chats/${chats[i]!.chatId}/sandbox`, [204, 404])));
  chats.length = 0;
}

async function throughput(users: Caller[]) {
  const executions = await load(60, 8, async (i) => void (await execute(users[i % users.length]!)));
  const ensures = await load(30, 10, async (i) => void (await ensureSandbox(users[i % users.length]!)));
  await dropSandboxes();
  const perSecond = (run: { samples: number[]; wallMs: number }) => (run.samples.length / (run.wallMs / 1000)).toFixed(1);
  return { executions, ensures, line: `${perSecond(executions)} executions/s, ${perSecond(ensures)} sandbox ensures/s` };
}

/**
 * 12 users each run two executions and ensure one sandbox, one after another (36 requests, 12 in
 * flight); `victim` is killed with SIGKILL `killAfterMs` into the burst and started again after.
 */
async function burstWithWorkerLoss(users: Caller[], victim: ClusterProcess, killAfterMs: number) {
  const outcomes: { ok: boolean; endedAt: number; error?: string }[] = [];
  const step = async (work: () => Promise<unknown>) => {
    try {
      await work();
      outcomes.push({ ok: true, endedAt: performance.now() });
    } catch (err) {
      outcomes.push({ ok: false, endedAt: performance.now(), error: (err as Error).message });
    }
  };
  const started = performance.now();
  let killedAt = NaN;
  const killer = sleep(killAfterMs).then(() => {
    killedAt = performance.now();
    victim.kill('SIGKILL');
  });
  await Promise.all([
    killer,
    ...users.slice(0, 12).map(async (user) => {
      await step(() => execute(user));
      await step(() => ensureSandbox(user));
      await step(() => execute(user));
    }),
  ]);
  const lastAnswer = Math.max(...outcomes.map((o) => o.endedAt));
  await dropSandboxes();
  victim.respawn();
  return {
    ok: outcomes.filter((o) => o.ok).length,
    failed: outcomes.filter((o) => !o.ok),
    afterKillMs: lastAnswer - killedAt,
    totalMs: lastAnswer - started,
  };
}

async function main(): Promise<void> {
  const users = await makeUsers(cluster.url, cluster.adminKey, 12);
  const workers = () => ['cluster-worker-1', 'cluster-worker-2'].map((name) => clusterProcess(cluster.runDir, name));
  // Warm: every api process and worker has its pooled containers, workflow caches and connections.
  await load(24, 8, async (i) => void (await execute(users[i % users.length]!)));
  await load(4, 4, async (i) => void (await ensureSandbox(users[i]!)));
  await dropSandboxes();

  const warm = await load(40, 1, async () => void (await execute(users[0]!)));
  let devWarm: number[] | undefined;
  if (devUrl && process.env.DEV_ADMIN_KEY_FILE) {
    const [devUser] = await makeUsers(devUrl, readFileSync(process.env.DEV_ADMIN_KEY_FILE, 'utf8').trim(), 1);
    await load(10, 1, async () => void (await execute(devUser!)));
    devWarm = (await load(40, 1, async () => void (await execute(devUser!)))).samples;
  }
  const ratio = devWarm ? ` (${(summarise(warm.samples).p50 / summarise(devWarm).p50).toFixed(2)}× the dev server's ${summarise(devWarm).p50.toFixed(1)} ms)` : '';
  console.log(`warm execution p50 in cluster mode: ${summarise(warm.samples).p50.toFixed(1)} ms${ratio}`);
  // --warm-only: that figure alone, to compare server configurations quickly.
  if (process.argv.includes('--warm-only')) return;

  const two = await throughput(users);

  const losses = [];
  for (const killAfterMs of [300, 800, 1500]) {
    const victim = workers()[1]!;
    losses.push({ killAfterMs, ...(await burstWithWorkerLoss(users, victim, killAfterMs)) });
    await sleep(3000); // the respawned worker connects and polls before the next round
  }

  // One worker: the second is stopped (SIGTERM, drained) for the measurement and started again.
  const second = workers()[1]!;
  second.kill('SIGTERM');
  await second.exited();
  const one = await throughput(users);
  second.respawn();

  const rss = ['cluster-api-1', 'cluster-api-2', 'cluster-worker-1', 'cluster-worker-2'].map((name) => `${name} ${rssMb(clusterProcess(cluster.runDir, name).pid).toFixed(0)} MB`);

  printTable('cluster mode: Temporal server on PostgreSQL, 2 api processes behind nginx (through the proxy)', [
    { name: 'execute print(6*7), 8 in flight, 2 workers', samples: two.executions.samples, extra: `errors ${two.executions.errors}` },
    { name: 'PUT sandbox (new chat), 10 in flight, 2 workers', samples: two.ensures.samples, extra: `errors ${two.ensures.errors}` },
    { name: 'execute print(6*7), 8 in flight, 1 worker', samples: one.executions.samples, extra: `errors ${one.executions.errors}` },
    { name: 'PUT sandbox (new chat), 10 in flight, 1 worker', samples: one.ensures.samples, extra: `errors ${one.ensures.errors}` },
    { name: 'execute warm, 1 in flight (cluster)', samples: warm.samples },
    ...(devWarm ? [{ name: 'execute warm, 1 in flight (dev server, :8080)', samples: devWarm }] : []),
  ]);
  console.log(`\nthroughput   2 workers: ${two.line}\n             1 worker:  ${one.line}`);
  console.log('\nworker loss: 12 users × (execute, ensure a sandbox, execute), one of two workers killed with SIGKILL');
  for (const loss of losses) {
    console.log(`  kill at ${String(loss.killAfterMs).padStart(4)} ms: ${loss.ok}/36 succeeded, last answer ${(loss.afterKillMs / 1000).toFixed(2)} s after the kill (burst ${(loss.totalMs / 1000).toFixed(2)} s)`);
    for (const failure of loss.failed) console.log(`    failed: ${failure.error}`);
  }
  console.log(`\nRSS after the run: ${rss.join(', ')}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
