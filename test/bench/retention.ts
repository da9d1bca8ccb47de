import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { createRetentionStore } from '../../activities/retention/store';
import { createSandboxStore } from '../../activities/sandbox/store';
import { createTerminalStore } from '../../activities/terminal/store';
import { createApp } from '../../api/platform/app';
import { createUserKey } from '../../api/platform/auth';
import { loadConfig } from '../../platform/config';
import { createPool } from '../../platform/database';
import { createLogger } from '../../platform/logger';
import { load, printTable, runBench } from './stats';

/**
 * What /metrics and retention cost when the tables are big: a scrape against a million sandbox
 * events and 200 000 ended terminal sessions (the statements the scrape ran before the counters,
 * and the ones it runs now), what the counting trigger adds to an event insert, and deleting a
 * million old rows in retention's batches. The planted rows are dated decades back (older than
 * anything else in the database) and removed at the end.
 *   npm run bench:retention [-- --events 1000000 --sessions 200000 --batch 1000]
 */
const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};

async function main(): Promise<void> {
  const events = arg('events', 1_000_000);
  const sessions = arg('sessions', 200_000);
  const batchSize = arg('batch', 1000);
  const config = loadConfig();
  // Planting a million rows takes longer than the api's statement timeout allows.
  const pool = createPool(config.DATABASE_URL, 8, { connectTimeoutMs: 10_000, statementTimeoutMs: 600_000 });
  const chatId = randomUUID();
  const { userId } = await createUserKey(pool, `bench-retention-${chatId.slice(0, 8)}`, 'user', 'bench');
  const old = "now() - interval '20000 days'";

  let t0 = performance.now();
  await pool.query(`INSERT INTO sandbox_events (event, chat_id, session_id, container_id, at) SELECT 'sandbox_reused', $1, gen_random_uuid(), 'c', ${old} FROM generate_series(1, $2)`, [chatId, events]);
  const plantEventsMs = performance.now() - t0;
  await pool.query(
    `INSERT INTO terminal_sessions (id, user_id, host_name, mode, token_hash, status, reason_closed, created_at, last_seen_at, expires_at, closed_at, idle_timeout_seconds)
     SELECT encode(sha256(($1 || g)::bytea), 'hex'), $2, 'h', 'embedded', repeat('0', 64), 'expired', 'idle', ${old}, ${old}, ${old}, ${old}, 60 FROM generate_series(1, $3) g`,
    [chatId, userId, sessions],
  );
  await pool.query('ANALYZE sandbox_events, terminal_sessions');
  console.log(`planted ${events} sandbox events (${(plantEventsMs / 1000).toFixed(1)} s, counting trigger on) and ${sessions} ended terminal sessions`);

  // The scrape's statements, before (counting the rows) and now (the counters).
  const before = [
    'SELECT event, count(*)::int AS n FROM sandbox_events GROUP BY event',
    'SELECT reason_closed AS reason, count(*) FROM terminal_sessions GROUP BY reason_closed',
  ];
  const timeStatements = async (statements: string[], runs: number) => (await load(runs, 1, async () => {
    for (const statement of statements) await pool.query(statement);
  })).samples;
  const beforeSamples = await timeStatements(before, 10);
  const terminals = createTerminalStore(pool);
  const nowSamples = (await load(200, 1, async () => {
    await createSandboxStore(pool).eventCounts();
    await terminals.sessionCountsByReason();
  })).samples;
  const app = createApp({ config, temporal: {} as Client, pool, docker: {} as Docker, log: createLogger('silent', 'bench') });
  const scrapes = await load(200, 1, async () => {
    await request(app).get('/metrics').expect(200);
  });
  const scrapes4 = await load(400, 4, async () => {
    await request(app).get('/metrics').expect(200);
  });

  // The trigger's cost on the write path: one event per statement, as the activities write them.
  const store = createSandboxStore(pool);
  const insert = () => store.recordEvent({ event: 'sandbox_reused', chatId, sessionId: randomUUID(), containerId: 'c' });
  const withTrigger = await load(3000, 1, insert);
  const withTrigger8 = await load(6000, 8, insert);
  await pool.query('ALTER TABLE sandbox_events DISABLE TRIGGER sandbox_events_counted');
  let withoutTrigger;
  let withoutTrigger8;
  try {
    withoutTrigger = await load(3000, 1, insert);
    withoutTrigger8 = await load(6000, 8, insert);
  } finally {
    await pool.query('ALTER TABLE sandbox_events ENABLE TRIGGER sandbox_events_counted');
  }
  // The rows just written are not old: back-date them so retention takes them too.
  await pool.query(`UPDATE sandbox_events SET at = ${old} WHERE chat_id = $1`, [chatId]);

  // Retention: every planted event, in batches, as the activity deletes them.
  const retention = createRetentionStore(pool);
  const cutoff = new Date(Date.now() - 10_000 * 86_400_000).toISOString();
  const batches: number[] = [];
  let deleted = 0;
  t0 = performance.now();
  for (;;) {
    const b0 = performance.now();
    const count = await retention.deleteOlderThan('sandbox_events', cutoff, batchSize);
    batches.push(performance.now() - b0);
    deleted += count;
    if (count < batchSize) break;
  }
  const retentionMs = performance.now() - t0;

  const perSecond = (run: { samples: number[]; wallMs: number }) => `${Math.round(run.samples.length / (run.wallMs / 1000))}/s`;
  printTable(`/metrics with ${events} sandbox events and ${sessions} ended terminal sessions`, [
    { name: 'the statements a scrape ran before (row counts)', samples: beforeSamples },
    { name: 'the statements a scrape runs now (counters)', samples: nowSamples },
    { name: 'GET /metrics now, 1 in flight', samples: scrapes.samples, extra: perSecond(scrapes) },
    { name: 'GET /metrics now, 4 in flight', samples: scrapes4.samples, extra: perSecond(scrapes4) },
  ]);
  printTable('one sandbox event written (INSERT, autocommit)', [
    { name: 'with the counting trigger, 1 writer', samples: withTrigger.samples, extra: perSecond(withTrigger) },
    { name: 'without it, 1 writer', samples: withoutTrigger.samples, extra: perSecond(withoutTrigger) },
    { name: 'with the counting trigger, 8 writers', samples: withTrigger8.samples, extra: perSecond(withTrigger8) },
    { name: 'without it, 8 writers', samples: withoutTrigger8.samples, extra: perSecond(withoutTrigger8) },
  ]);
  printTable(`retention: ${deleted} rows in batches of ${batchSize}`, [
    { name: 'one batch (DELETE … LIMIT)', samples: batches, extra: `${(retentionMs / 1000).toFixed(1)} s in all, ${Math.round(deleted / (retentionMs / 1000))} rows/s` },
  ]);

  await pool.query('DELETE FROM terminal_sessions WHERE user_id = $1', [userId]);
  await pool.query('DELETE FROM users WHERE id = $1', [userId]);
  await pool.end();
}

runBench(main);
