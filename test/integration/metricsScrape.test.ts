import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { createSandboxStore } from '../../activities/sandbox/store';
import { createTerminalStore } from '../../activities/terminal/store';
import { createApp } from '../../api/platform/app';
import { createUserKey } from '../../api/platform/auth';
import { createLogger } from '../../platform/logger';
import { openInfra, type Infra } from '../helpers/infra';
import { planNodes, recordingPool, type Statement } from '../helpers/statements';

/**
 * /metrics must not scan the event and session tables on each scrape: they only grow (until
 * retention trims them). The statements a scrape runs are recorded from the real pool and
 * explained by PostgreSQL against tables holding tens of thousands of rows.
 */
let infra: Infra;
let ownerId: string;
const chatId = randomUUID();
const eventRows = 30_000;
const endedTerminalRows = 10_000;
const growingTables = ['sandbox_events', 'executions', 'terminal_sessions'];

beforeAll(async () => {
  infra = openInfra();
  ({ userId: ownerId } = await createUserKey(infra.pool, `metrics-${randomUUID().slice(0, 8)}`, 'user', 'test'));
  await infra.pool.query(
    `INSERT INTO sandbox_events (event, chat_id, session_id, container_id)
     SELECT 'sandbox_reused', $1, gen_random_uuid(), 'c' FROM generate_series(1, $2)`,
    [chatId, eventRows],
  );
  await infra.pool.query(
    `INSERT INTO terminal_sessions (id, user_id, host_name, mode, token_hash, status, reason_closed, created_at, last_seen_at, expires_at, closed_at, idle_timeout_seconds)
     SELECT encode(sha256(($1 || g)::bytea), 'hex'), $2, 'h', 'embedded', repeat('0', 64), 'expired', 'idle', now(), now(), now(), now(), 60
       FROM generate_series(1, $3) g`,
    [chatId, ownerId, endedTerminalRows],
  );
  await infra.pool.query('ANALYZE sandbox_events, terminal_sessions, executions');
});
afterAll(async () => {
  await infra.pool.query('DELETE FROM sandbox_events WHERE chat_id = $1', [chatId]);
  await infra.pool.query('DELETE FROM terminal_sessions WHERE user_id = $1', [ownerId]);
  await infra.close();
});

async function scrape(): Promise<{ text: string; statements: Statement[] }> {
  const statements: Statement[] = [];
  // Building the app and scraping touch only PostgreSQL; these placeholders are never called.
  const app = createApp({ config: infra.config, temporal: {} as Client, pool: recordingPool(infra.pool, statements), docker: {} as Docker, log: createLogger('silent', 'metrics-test') });
  statements.length = 0;
  const res = await request(app).get('/metrics').expect(200);
  return { text: res.text, statements };
}

const sampleOf = (text: string, series: string) => Number(text.split('\n').find((line) => line.startsWith(`${series} `))?.split(' ')[1]);

describe('a /metrics scrape', () => {
  it('runs two statements, neither of which reads the event rows or the ended sessions', async () => {
    const { statements } = await scrape();
    expect(statements).toHaveLength(2);
    for (const statement of statements) {
      const touched = (await planNodes(infra.pool, statement)).filter((node) => node['Relation Name'] && growingTables.includes(node['Relation Name']));
      // At most the active terminals, counted through their partial index: never a sequential
      // scan, never the events or the executions.
      const forbidden = touched.filter((node) => node['Node Type'] === 'Seq Scan' || node['Relation Name'] !== 'terminal_sessions');
      expect({ statement: statement.text, forbidden: forbidden.map((node) => `${node['Node Type']} on ${node['Relation Name']}`) }).toEqual({ statement: statement.text, forbidden: [] });
    }
  });

  it('counts every event and ended session, and no count goes down when old rows are deleted', async () => {
    const reused = 'sessionflow_sandbox_events_total{event="sandbox_reused"}';
    const idle = 'sessionflow_terminal_sessions_ended{reason="idle"}';
    const before = await scrape();
    expect(sampleOf(before.text, reused)).toBeGreaterThanOrEqual(eventRows);
    expect(sampleOf(before.text, idle)).toBeGreaterThanOrEqual(endedTerminalRows);

    // Three events through the activities' own store, one session ended twice (counted once).
    const store = createSandboxStore(infra.pool);
    for (let i = 0; i < 3; i++) await store.recordEvent({ event: 'sandbox_reused', chatId, sessionId: randomUUID(), containerId: 'c' });
    const terminals = createTerminalStore(infra.pool);
    const sessionId = randomUUID().replace(/-/g, '').padEnd(64, '0');
    const now = new Date().toISOString();
    await infra.pool.query(
      `INSERT INTO terminal_sessions (id, user_id, host_name, mode, token_hash, status, created_at, last_seen_at, expires_at, idle_timeout_seconds)
       VALUES ($1, $2, 'h', 'embedded', repeat('0', 64), 'active', now(), now(), now(), 60)`,
      [sessionId, ownerId],
    );
    await terminals.recordEnded(sessionId, 'expired', 'idle', now);
    await terminals.recordEnded(sessionId, 'closed', 'user_close', now);

    const after = await scrape();
    expect(sampleOf(after.text, reused) - sampleOf(before.text, reused)).toBe(3);
    expect(sampleOf(after.text, idle) - sampleOf(before.text, idle)).toBe(1);

    // What retention does to old rows: the counters stay.
    await infra.pool.query('DELETE FROM sandbox_events WHERE chat_id = $1', [chatId]);
    await infra.pool.query('DELETE FROM terminal_sessions WHERE user_id = $1', [ownerId]);
    const trimmed = await scrape();
    expect(sampleOf(trimmed.text, reused)).toBe(sampleOf(after.text, reused));
    expect(sampleOf(trimmed.text, idle)).toBe(sampleOf(after.text, idle));
  });
});
