import { randomUUID } from 'node:crypto';
import request from 'supertest';
import type { ApiHarness } from '../../helpers/api';
import { startComputeE2e, type ComputeE2e } from '../../helpers/computeE2e';

/**
 * Working in a compute session's kernel through HTTP, end to end: the api, the session workflow
 * on a worker, one real node on the main Docker engine, the kernel runner in a real kernel. The
 * seed's scenarios of execute (4.1–4.4) and interrupt (5.1–5.2), completion, and the refusals.
 */
let e2e: ComputeE2e;
let api: ApiHarness;
let other: { key: string; userId: string };
let sessionId: string;
const tag = randomUUID().slice(0, 8);
const group = `e2e-x-${tag}`;
const sessions: string[] = [];

const as = (key: string) => ({ Authorization: `Bearer ${key}` });
const user = () => as(api.userKey);
const path = (action: string, id = sessionId) => `/api/v1/sessions/${id}/${action}`;
const execute = (body: Record<string, unknown>, id = sessionId) => request(api.app).post(path('execute', id)).set(user()).send({ mode: 'query', ...body });
const valueOf = async (expression: string): Promise<unknown> => (await execute({ code: expression }).expect(200)).body.result;

beforeAll(async () => {
  e2e = await startComputeE2e({ group, sessions });
  ({ api, other } = e2e);
  const created = await request(api.app).post('/api/v1/sessions').set(user()).send({ image: 'python:3.11', scaling_group: group, resources: { cpu: '1', memory: '256M' } });
  if (created.body.id) sessions.push(created.body.id as string);
  expect(created.status).toBe(201);
  expect(created.body.status).toBe('RUNNING');
  sessionId = created.body.id as string;
}, 180_000);

afterAll(async () => {
  await e2e.teardown();
});

describe('POST /api/v1/sessions/:id/execute', () => {
  it('runs a cell: its stdout and the value of result, and the namespace survives to the next execution (seed 4.1)', async () => {
    const res = await execute({ run_id: 'run-123', code: "print('Hello, World!')\nresult = 2 + 2" }).expect(200);
    expect(res.body).toEqual({ run_id: 'run-123', status: 'finished', exit_code: 0, stdout: 'Hello, World!\n', stderr: '', result: 4, result_repr: '4', truncated: false, interrupted: false });
    expect(await valueOf('result * 10')).toBe(40);
  });

  it('makes a run id when the client gives none, and answers the same run id again without running the code twice', async () => {
    await execute({ code: 'count = 0' }).expect(200);
    const made = await execute({ code: 'count += 1\ncount' }).expect(200);
    expect(made.body.run_id).toMatch(/^[0-9a-f-]{36}$/);
    const first = await execute({ run_id: 'once', code: 'count += 1\ncount' }).expect(200);
    const again = await execute({ run_id: 'once', code: 'count += 1\ncount' }).expect(200);
    expect(again.body).toEqual(first.body);
    expect(await valueOf('count')).toBe(2);
  });

  it('answers an error with ZeroDivisionError on stderr and exit code 1, and the kernel stays usable (seed 4.2)', async () => {
    const res = await execute({ code: '1 / 0' }).expect(200);
    expect(res.body.exit_code).toBe(1);
    expect(res.body.stderr).toContain('ZeroDivisionError');
    expect(await valueOf('result')).toBe(4);
  });

  it('answers ExecutionTimeout (408) past the timeout, and the kernel stays usable (seed 4.3)', async () => {
    const res = await execute({ code: 'import time; time.sleep(60)', timeout: 10 }).expect(408);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body).toMatchObject({ code: 'ExecutionTimeout', timeout: 10 });
    expect(await valueOf('result')).toBe(4);
  });

  it('feeds stdin given up front to input() (seed 4.4)', async () => {
    const res = await execute({ code: "name = input('Enter name: ')", stdin: 'Alice\n' }).expect(200);
    expect(res.body).toMatchObject({ exit_code: 0, stdout: 'Enter name: ' });
    expect(await valueOf('name')).toBe('Alice');
  });

  it('refuses bad bodies and unknown fields with 400 and runs nothing', async () => {
    await execute({ code: 'touched = 1' }).expect(200);
    for (const body of [
      { mode: 'exec', code: 'touched = 3' }, { code: 'touched = 4', unknown: true }, { code: 'touched = 5', timeout: 0 }, { code: 'touched = 6', run_id: 'no spaces' },
      {}, { mode: 'input', code: 'x' }, { mode: 'continue' }, { mode: 'batch' }, { code: 'touched = 7', options: { exec: 'true' } }, { mode: 'batch', code: 'true', options: { run: 'x' } },
    ]) {
      const res = await execute(body).expect(400);
      expect(res.body).toMatchObject({ code: 'ValidationFailed' });
    }
    expect(await valueOf('touched')).toBe(1);
  });

  it('answers waiting-input when the code asks for input without stdin, and a run in mode input feeds it', async () => {
    const asked = await execute({ run_id: `ask-${tag}`, code: "name = input('Enter name: ')\nprint('Hello,', name)\nlen(name)" }).expect(200);
    expect(asked.body).toMatchObject({ run_id: `ask-${tag}`, status: 'waiting-input', exit_code: null, stdout: 'Enter name: ' });
    const answered = await execute({ mode: 'input', run_id: `ask-${tag}`, code: 'Bob' }).expect(200);
    expect(answered.body).toMatchObject({ status: 'finished', exit_code: 0, stdout: 'Hello, Bob\n', result: 3 });
    expect(await valueOf('name')).toBe('Bob');
    // Nothing waits any more; a run the kernel never saw is unknown.
    expect((await execute({ mode: 'input', run_id: `ask-${tag}`, code: 'again' }).expect(409)).body.code).toBe('RunNotWaitingInput');
    expect((await execute({ mode: 'input', run_id: 'never-started', code: 'x' }).expect(404)).body.code).toBe('RunNotFound');
  });

  it('answers continued when the wait ends before the run, and mode continue gives the rest, then the end again', async () => {
    const code = "import time\nprint('first')\ntime.sleep(2)\nprint('second')\n'done'";
    const started = await execute({ run_id: `slow-${tag}`, code, wait: 0.5 }).expect(200);
    expect(started.body).toMatchObject({ status: 'continued', exit_code: null, stdout: 'first\n' });
    const rest = await execute({ mode: 'continue', run_id: `slow-${tag}` }).expect(200);
    expect(rest.body).toMatchObject({ status: 'finished', exit_code: 0, stdout: 'second\n', result: 'done' });
    expect((await execute({ mode: 'continue', run_id: `slow-${tag}` }).expect(200)).body).toEqual(rest.body);
  });

  it('runs batch commands in the home directory: build, then exec, with stdin; a failing build skips exec', async () => {
    const built = await execute({ mode: 'batch', options: { build: "printf 'print(6 * 7)' > prog.py", exec: 'python3 prog.py && pwd' } }).expect(200);
    expect(built.body).toMatchObject({ status: 'finished', exit_code: 0, stdout: '42\n/home/work\n', stderr: '' });
    const failed = await execute({ mode: 'batch', code: 'echo never', options: { build: 'echo broken >&2; exit 3' } }).expect(200);
    expect(failed.body).toMatchObject({ exit_code: 3, stdout: '', stderr: 'broken\n' });
    expect((await execute({ mode: 'batch', code: 'read word; echo "got $word"', stdin: 'yes\n' }).expect(200)).body.stdout).toBe('got yes\n');
    const slow = await execute({ mode: 'batch', code: 'sleep 30', timeout: 1 }).expect(408);
    expect(slow.body.code).toBe('ExecutionTimeout');
    expect(await valueOf('result')).toBe(4);
  });

  it('refuses another run while one goes on with InvalidSessionState (409)', async () => {
    const long = execute({ run_id: `busy-${tag}`, code: 'import time; time.sleep(3)' }).then((res) => res);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const refused = await execute({ code: '1' }).expect(409);
    expect(refused.body).toMatchObject({ code: 'InvalidSessionState', running_run_id: `busy-${tag}` });
    expect((await long).status).toBe(200);
  });
});

describe('POST /api/v1/sessions/:id/interrupt', () => {
  it('ends a running run with KeyboardInterrupt and keeps the namespace (seed 5.1)', async () => {
    await execute({ code: 'before_interrupt = "kept"' }).expect(200);
    const long = execute({ run_id: 'long-running-123', code: 'import time\nwhile True:\n    time.sleep(0.1)', timeout: 120 }).then((res) => res);
    let done = false;
    void long.then(() => {
      done = true;
    });
    // Until the run has reached the kernel, an interrupt finds nothing to interrupt: ask again.
    while (!done) {
      const res = await request(api.app).post(path('interrupt')).set(user()).send({ run_id: 'long-running-123' }).expect(200);
      expect(res.body.run_id).toBe('long-running-123');
      if (!done) await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const ended = await long;
    expect(ended.status).toBe(200);
    expect(ended.body).toMatchObject({ run_id: 'long-running-123', exit_code: 1, interrupted: true });
    expect(ended.body.stderr).toContain('KeyboardInterrupt');
    expect(await valueOf('before_interrupt')).toBe('kept');
  });

  it('ends a run waiting for input with KeyboardInterrupt', async () => {
    expect((await execute({ run_id: `asks-${tag}`, code: "input('? ')" }).expect(200)).body.status).toBe('waiting-input');
    expect((await request(api.app).post(path('interrupt')).set(user()).send({ run_id: `asks-${tag}` }).expect(200)).body).toEqual({ run_id: `asks-${tag}`, running: false });
    const ended = await execute({ mode: 'continue', run_id: `asks-${tag}` }).expect(200);
    expect(ended.body).toMatchObject({ status: 'finished', exit_code: 1, interrupted: true });
    expect(ended.body.stderr).toContain('KeyboardInterrupt');
  });

  it('succeeds for a finished or unknown run (seed 5.2)', async () => {
    await execute({ run_id: 'completed-run', code: 'x = 1' }).expect(200);
    for (const runId of ['completed-run', 'completed-run', 'never-ran']) {
      expect((await request(api.app).post(path('interrupt')).set(user()).send({ run_id: runId }).expect(200)).body).toEqual({ run_id: runId, running: false });
    }
  });
});

describe('POST /api/v1/sessions/:id/complete', () => {
  it('gives module names after import and names from the namespace', async () => {
    const modules = await request(api.app).post(path('complete')).set(user()).send({ code: 'import o' }).expect(200);
    expect(modules.body.candidates).toContain('os');
    await execute({ code: 'my_long_variable = 1' }).expect(200);
    const names = await request(api.app).post(path('complete')).set(user()).send({ code: 'print(my_lo)', position: 11 }).expect(200);
    expect(names.body).toEqual({ candidates: ['my_long_variable'] });
  });
});

describe('owner scoping and ended sessions', () => {
  it('answers another user\'s session as unknown (404) on every kernel route', async () => {
    for (const [action, body] of [['execute', { mode: 'query', code: 'leak = 1' }], ['interrupt', { run_id: 'x' }], ['complete', { code: 'o' }]] as const) {
      const res = await request(api.app).post(path(action)).set(as(other.key)).send(body).expect(404);
      expect(res.body.code).toBe('SessionNotFound');
    }
    expect((await request(api.app).post(path('execute', randomUUID())).set(user()).send({ code: '1' }).expect(404)).body.code).toBe('SessionNotFound');
    await execute({ code: "'leak' in dir()" }).expect(200).expect((res) => expect(res.body.result).toBe(false));
  });

  it('refuses to execute or complete in an ended session (409), and an interrupt there is done', async () => {
    const created = await request(api.app).post('/api/v1/sessions').set(user()).send({ image: 'python:3.11', scaling_group: group, resources: { cpu: '0.5', memory: '256M' }, enqueue_only: true }).expect(201);
    const id = created.body.id as string;
    sessions.push(id);
    await request(api.app).delete(`/api/v1/sessions/${id}?forced=true`).set(user()).expect(200);
    const statusOf = async () => (await request(api.app).get(`/api/v1/sessions/${id}`).set(user()).expect(200)).body.status as string;
    for (let i = 0; i < 150 && !['TERMINATED', 'CANCELLED'].includes(await statusOf()); i++) await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await execute({ code: '1' }, id).expect(409)).body.code).toBe('InvalidSessionState');
    expect((await request(api.app).post(path('complete', id)).set(user()).send({ code: 'o' }).expect(409)).body.code).toBe('InvalidSessionState');
    expect((await request(api.app).post(path('interrupt', id)).set(user()).send({ run_id: 'x' }).expect(200)).body).toEqual({ run_id: 'x', running: false });
  });
});
