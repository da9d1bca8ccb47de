import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { makePoolWorkflowId, makeSessionKey, poolStateQuery } from '../../../domain/execution/execution';
import { startExecutorHarnesses, type ExecutorHarnesses } from '../../helpers/executionPools';
import { openInfra, type Infra } from '../../helpers/infra';
import { connectTestEnv } from '../../helpers/temporal';

/**
 * Issue 11: what a user's program prints and what a request names are the user's business —
 * stored and returned faithfully, or refused with 400 naming the field — never a 500, and never
 * a reason to retire a container (a session keeps its files).
 */
let env: TestWorkflowEnvironment;
let infra: Infra;
let harnesses: ExecutorHarnesses | undefined;
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  // A body limit raised past the default 1mb, as an operator may: the job-size guard is then what answers.
  harnesses = await startExecutorHarnesses(env, infra, { EXECUTION_READY_SESSIONS: 1, REQUEST_BODY_LIMIT: '8mb' });
});
afterAll(async () => {
  await harnesses?.stop();
  await infra.close();
  await env.teardown();
});

const docker = () => harnesses!.docker;
const execute = (body: Record<string, unknown>, api = docker()) =>
  request(api.app).post('/api/v2/execute').set({ Authorization: `Bearer ${api.userKey}` }).send({ language: 'python', version: '3', ...body });
const python = (content: string, extra: Record<string, unknown> = {}, api = docker()) => execute({ files: [{ content }], ...extra }, api);

/** The container the docker pool keeps for a session of the test user. */
async function sessionContainer(sessionId: string): Promise<string | undefined> {
  const state = await env.client.workflow.getHandle(makePoolWorkflowId(docker().taskQueue, 'python')).query(poolStateQuery);
  return state.containers.find((c) => c.sessionKey === makeSessionKey(docker().userId, sessionId))?.containerId;
}

/** Writes a file in a session, and returns a probe that the session (its container) still has it. */
async function sessionWithFile(): Promise<{ sessionId: string; container: string | undefined; stillThere(): Promise<void> }> {
  const sessionId = `s-${randomUUID()}`;
  await python('open("kept.txt", "w").write("kept")', { session_id: sessionId }).expect(200);
  const container = await sessionContainer(sessionId);
  expect(container).toEqual(expect.any(String));
  return {
    sessionId,
    container,
    async stillThere() {
      const res = await python('print(open("kept.txt").read())', { session_id: sessionId }).expect(200);
      expect(res.body.run.stdout).toBe('kept\n');
      expect(await sessionContainer(sessionId)).toBe(container);
    },
  };
}

describe.each(['docker', 'local'] as const)('output with NUL characters (%s executor)', (executor) => {
  it('comes back byte for byte on stdout and in output, escaped as \\u0000 in the JSON', async () => {
    const res = await python('import sys\nsys.stdout.write("a\\x00b\\x00\\x00c\\n")', {}, harnesses![executor]).expect(200);
    expect(res.headers['x-sessionflow-executor']).toBe(executor);
    expect(res.body.run).toMatchObject({ stdout: 'a\0b\0\0c\n', output: 'a\0b\0\0c\n', stderr: '', code: 0, status: null });
    expect(res.text).toContain('"stdout":"a\\u0000b\\u0000\\u0000c\\n"');
  });

  it('comes back byte for byte past the history cap (docker: read back from the executions table), stderr too', async () => {
    const res = await python('import sys\nsys.stdout.write("\\x00" + "x" * 6000 + "\\x00end")\nsys.stdout.flush()\nsys.stderr.write("e\\x00rr")', {}, harnesses![executor]).expect(200);
    expect(res.body.run.stdout).toBe(`\0${'x'.repeat(6000)}\0end`);
    expect(res.body.run.stderr).toBe('e\0rr');
    // The two streams are read as they come: either may be first in `output`.
    expect([`\0${'x'.repeat(6000)}\0ende\0rr`, `e\0rr\0${'x'.repeat(6000)}\0end`]).toContain(res.body.run.output);
  });
});

describe('NUL characters going in', () => {
  it('reach the program whole on stdin, and come back out', async () => {
    const stdin = 'in\0put\0';
    const res = await python('import sys\nsys.stdout.write(sys.stdin.read())', { stdin }).expect(200);
    expect(res.body.run.stdout).toBe(stdin);
  });

  it('in an argument, or half a surrogate pair in stdin or an argument, answer 400 naming the field', async () => {
    for (const [extra, field] of [
      [{ args: ['ok', 'a\0b'] }, 'body.args.1'],
      [{ args: ['\ud800'] }, 'body.args.0'],
      [{ stdin: 'x\udc00' }, 'body.stdin'],
    ] as const) {
      const res = await python('print(1)', extra).expect(400);
      expect(res.body).toMatchObject({ code: 'ValidationFailed', errors: [expect.objectContaining({ field })] });
    }
  });
});

describe('a session after NUL output', () => {
  it('keeps its container and its files', async () => {
    const session = await sessionWithFile();
    const res = await python('import sys\nsys.stdout.write("\\x00")', { session_id: session.sessionId }).expect(200);
    expect(res.body.run.stdout).toBe('\0');
    await session.stillThere();
  });
});

describe('file names the runner cannot honour', () => {
  // One session for the names refused at the edge (a user has few session containers per runtime).
  let session: Awaited<ReturnType<typeof sessionWithFile>>;
  beforeAll(async () => {
    session = await sessionWithFile();
  });

  it.each([
    ['a trailing slash', [{ name: 'a/', content: 'x' }], 'body.files.0.name'],
    ['a file next to a directory of the same name', [{ name: 'main.py', content: 'print(1)' }, { name: 'a', content: 'x' }, { name: 'a/b', content: 'x' }], 'body.files.2.name'],
    ['a directory next to a file of the same name', [{ name: 'main.py', content: 'print(1)' }, { name: 'a/b', content: 'x' }, { name: 'a', content: 'x' }], 'body.files.2.name'],
    ['the default name taken by a named file', [{ content: 'print(1)' }, { name: 'main.py', content: 'x' }], 'body.files.1.name'],
  ])('answer 400 ValidationFailed naming the file: %s', async (_what, files, field) => {
    const res = await execute({ files, session_id: session.sessionId }).expect(400);
    expect(res.body).toMatchObject({ code: 'ValidationFailed', errors: [expect.objectContaining({ field })] });
    await session.stillThere();
  });

  it('answer 400 naming the file when a session\'s earlier program left a directory in its way, and the session keeps its container', async () => {
    const blocked = await sessionWithFile();
    await python('import os\nos.makedirs("x/y")', { session_id: blocked.sessionId }).expect(200);
    const res = await execute({ files: [{ content: 'print(1)' }, { name: 'x', content: 'data' }], session_id: blocked.sessionId }).expect(400);
    expect(res.body).toMatchObject({ code: 'ValidationFailed', errors: [{ field: 'body.files.1.name', message: expect.stringMatching(/directory/i) }] });
    await blocked.stillThere();
  });
});

describe('a request whose job would not fit in a Temporal payload', () => {
  it('answers 413 PayloadTooLarge instead of the 500 of a refused workflow start', async () => {
    const files = [{ content: 'print(1)' }, ...[1, 2, 3].map((i) => ({ name: `data${i}.bin`, content: 'x'.repeat(1024 * 1024), encoding: 'utf8' }))];
    const res = await execute({ files }).expect(413);
    expect(res.body).toMatchObject({ code: 'PayloadTooLarge', message: expect.stringMatching(/at most/) });
  });
});
