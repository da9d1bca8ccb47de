import type Docker from 'dockerode';
import { chooseExecutor } from '../../../api/execution/executors';
import { ApiError } from '../../../api/platform/problems';
import { capForHistory, executionStatus, findRuntime, makeExecutionWorkflowId, makeSessionKey, type StageResult } from '../../../domain/execution/execution';

const stage = (stdout: string, extra: Partial<StageResult> = {}): StageResult => ({
  stdout, stderr: '', output: stdout, code: 0, signal: null, message: null, status: null, cpu_time: 1, wall_time: 1, memory: 1, ...extra,
});

describe('findRuntime', () => {
  it('matches a language or an alias with * or a version prefix, as Piston does', () => {
    expect(findRuntime('python', '*')?.language).toBe('python');
    expect(findRuntime('py', '3.11')?.language).toBe('python');
    expect(findRuntime('node', '18')?.language).toBe('javascript');
    expect(findRuntime('gcc', '*')?.compile).toBeDefined();
  });

  it('finds nothing for an unknown language or a version we do not have', () => {
    expect(findRuntime('cobol', '*')).toBeUndefined();
    expect(findRuntime('python', '2')).toBeUndefined();
  });
});

describe('capForHistory', () => {
  it('cuts every stream to the cap and says so', () => {
    const { result, truncated } = capForHistory({ language: 'python', version: '3', run: stage('x'.repeat(10)) }, 4);
    expect(truncated).toBe(true);
    expect(result.run).toMatchObject({ stdout: 'xxxx', output: 'xxxx' });
  });

  it('leaves short output whole', () => {
    expect(capForHistory({ language: 'python', version: '3', run: stage('ok') }, 4).truncated).toBe(false);
  });
});

describe('execution ids and status', () => {
  it('scopes a session id to its user', () => {
    expect(makeSessionKey('alice', 's1')).not.toBe(makeSessionKey('bob', 's1'));
  });

  it('keys executions by request id', () => {
    expect(makeExecutionWorkflowId('abc')).toBe('exec/abc');
  });

  it('names the failing stage status, a failed compile, or OK', () => {
    expect(executionStatus({ language: 'c', version: '12', run: stage('') })).toBe('OK');
    expect(executionStatus({ language: 'c', version: '12', run: stage('', { status: 'TO' }) })).toBe('TO');
    expect(executionStatus({ language: 'c', version: '12', compile: stage('', { code: 1, status: 'RE' }) })).toBe('RE');
    // The runner turned the job down: nothing ran.
    expect(executionStatus({ language: 'c', version: '12' })).toBe('XX');
  });
});

describe('chooseExecutor', () => {
  const named = (name: 'docker' | 'local') => () => ({ name, execute: () => Promise.reject(new Error('unused')) });

  it('never runs user code on the host because Docker did not answer: 503 with Retry-After, and the next request asks Docker again', async () => {
    let up = false;
    const flaky = { ping: () => (up ? Promise.resolve('OK') : Promise.reject(new Error('connect ENOENT /var/run/docker.sock'))) } as unknown as Docker;
    const choose = chooseExecutor(false, flaky, named('docker'), named('local'));
    const refused = await choose().catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ code: 'DependencyUnavailable', extra: { dependency: 'docker', retryAfterSeconds: expect.any(Number) } });
    up = true;
    expect((await choose()).name).toBe('docker');
  });

  it('uses the local executor when told to, and Docker otherwise', async () => {
    const reachable = { ping: () => Promise.resolve('OK') } as unknown as Docker;
    expect((await chooseExecutor(true, reachable, named('docker'), named('local'))()).name).toBe('local');
    expect((await chooseExecutor(false, reachable, named('docker'), named('local'))()).name).toBe('docker');
  });
});
