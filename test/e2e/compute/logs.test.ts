import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { eventually, type ApiHarness } from '../../helpers/api';
import { startComputeE2e, type ComputeE2e } from '../../helpers/computeE2e';

/**
 * A compute session's container logs through HTTP, end to end: a 2-kernel cluster on one real
 * node whose bootstrap script writes to stdout and stderr; all kernels, one kernel, a time
 * window (seed 9.1–9.3), the refusals, and the logs kept once the session is destroyed.
 */
let t: ComputeE2e;
let api: ApiHarness;
let other: ComputeE2e['other'];
let session: { id: string; kernels: { id: string; hostname: string }[] };
let bootedAt: number;

interface KernelLogs { kernel_id: string; hostname: string; lines: { at: string; stream?: string; text: string }[]; truncated: boolean }

const as = (key: string) => ({ Authorization: `Bearer ${key}` });
const user = () => as(api.userKey);
const logs = (query: Record<string, string> = {}, id = session.id, key = api.userKey) => request(api.app).get(`/api/v1/sessions/${id}/logs`).query(query).set(as(key));
const texts = (kernel: KernelLogs) => kernel.lines.map((line) => line.text);

beforeAll(async () => {
  t = await startComputeE2e({ prefix: 'e2e-l', config: { COMPUTE_CREATE_WAIT_SECONDS: 90 } });
  ({ api, other } = t);
  const id = await t.createSession({
    resources: { cpu: '500m', memory: '256M' }, cluster_size: 2,
    bootstrap_script: 'echo "booted $(hostname)"\necho "warned $(hostname)" >&2',
  });
  session = (await request(api.app).get(`/api/v1/sessions/${id}`).set(user()).expect(200)).body as typeof session;
  bootedAt = Date.now();
}, 240_000);

afterAll(async () => {
  await t.teardown();
});

describe('GET /api/v1/sessions/:id/logs', () => {
  it('answers every kernel\'s stdout and stderr with timestamps, each labelled, when no kernel is given (seed 9.1)', async () => {
    const body = (await logs().expect(200)).body as KernelLogs[];
    expect(body.map((k) => k.hostname)).toEqual(['main1', 'sub1']);
    expect(body.map((k) => k.kernel_id)).toEqual(session.kernels.map((k) => k.id));
    for (const kernel of body) {
      expect(kernel.lines).toEqual(expect.arrayContaining([
        { at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/), stream: 'stdout', text: `booted ${kernel.hostname}` },
        { at: expect.any(String), stream: 'stderr', text: `warned ${kernel.hostname}` },
      ]));
      expect(kernel.truncated).toBe(false);
    }
  });

  it('answers only the kernel asked for (seed 9.2)', async () => {
    const sub = session.kernels.find((k) => k.hostname === 'sub1')!;
    const body = (await logs({ kernel_id: sub.id }).expect(200)).body as KernelLogs[];
    expect(body).toHaveLength(1);
    expect(body[0]).toMatchObject({ kernel_id: sub.id, hostname: 'sub1' });
    expect(texts(body[0]!)).toContain('booted sub1');
    expect(texts(body[0]!)).not.toContain('booted main1');
  });

  it('keeps only the lines within since and until (seed 9.3)', async () => {
    const seedWindow = (await logs({ since: '2024-01-01T00:00:00', until: '2024-01-01T01:00:00' }).expect(200)).body as KernelLogs[];
    expect(seedWindow.map((k) => k.lines)).toEqual([[], []]);
    const after = (await logs({ since: new Date(bootedAt + 1000).toISOString() }).expect(200)).body as KernelLogs[];
    expect(after.flatMap(texts).filter((text) => text.startsWith('booted'))).toEqual([]);
    const around = (await logs({ since: new Date(bootedAt - 600_000).toISOString(), until: new Date(bootedAt + 1000).toISOString() }).expect(200)).body as KernelLogs[];
    expect(around.flatMap(texts)).toEqual(expect.arrayContaining(['booted main1', 'booted sub1']));
  });

  it('refuses bad times and since after until (400 ValidationFailed), an unknown kernel and another user\'s session (404)', async () => {
    expect((await logs({ since: 'yesterday' }).expect(400)).body.code).toBe('ValidationFailed');
    expect((await logs({ since: '2024-01-01T02:00:00Z', until: '2024-01-01T01:00:00Z' }).expect(400)).body.code).toBe('ValidationFailed');
    expect((await logs({ kernel_id: randomUUID() }).expect(404)).body.code).toBe('NotFound');
    expect((await logs({}, session.id, other.key).expect(404)).body.code).toBe('SessionNotFound');
  });

  it('still answers a destroyed session\'s logs, from what was kept at its end, with the filters', async () => {
    await request(api.app).delete(`/api/v1/sessions/${session.id}`).set(user()).expect(200);
    await eventually(async () => (await request(api.app).get(`/api/v1/sessions/${session.id}`).set(user()).expect(200)).body.status as string, (status) => status === 'TERMINATED', 60_000);
    const body = (await logs().expect(200)).body as KernelLogs[];
    expect(body.map((k) => k.hostname)).toEqual(['main1', 'sub1']);
    expect(body.map(texts)).toEqual([expect.arrayContaining(['booted main1', 'warned main1']), expect.arrayContaining(['booted sub1', 'warned sub1'])]);
    const sub = session.kernels.find((k) => k.hostname === 'sub1')!;
    expect(((await logs({ kernel_id: sub.id }).expect(200)).body as KernelLogs[]).map((k) => k.hostname)).toEqual(['sub1']);
    expect(((await logs({ since: new Date(bootedAt + 1000).toISOString() }).expect(200)).body as KernelLogs[]).flatMap(texts).filter((text) => text.startsWith('booted'))).toEqual([]);
  });
});
