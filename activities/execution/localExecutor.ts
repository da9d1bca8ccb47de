import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionJob, ExecutionResult, UnwritableFile } from '../../domain/execution/execution';
import { domainFailure } from '../../domain/shared/errors';
import type { ExecutionStore } from './store';
import { runnerSource, splitRunnerResult, toRunnerJob, type RunnerResult } from './executionRunner';

/**
 * The fallback executor (USE_LOCAL_EXECUTOR=true, or no Docker): the same runner as in the
 * containers, as a subprocess of this process in a fresh temporary directory, with rlimits
 * (address space, file size, processes) and SIGKILL deadlines — but with this machine's
 * network, file system and user. Reduced isolation: for development and tests only.
 */
export async function runLocally(job: ExecutionJob, ownerId: string, store: ExecutionStore): Promise<{ result: ExecutionResult; unwritableFile?: UnwritableFile }> {
  const workDir = await mkdtemp(join(tmpdir(), 'sf-exec-'));
  try {
    const runnerJob = toRunnerJob(job, { workDir, keepWorkDir: false, killAll: false, fileSizeLimit: 10 * 1024 * 1024, processLimit: 256 });
    const { stages, unwritableFile } = splitRunnerResult(await runPython(JSON.stringify(runnerJob), (job.compile?.timeoutMs ?? 0) + job.run.timeoutMs + 10_000));
    const result = { language: job.language, version: job.version, ...stages };
    await store.record({ id: job.requestId, ownerId, sessionId: job.sessionKey, executor: 'local', result });
    return { result, ...(unwritableFile ? { unwritableFile } : {}) };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

function runPython(jobJson: string, guardMs: number): Promise<RunnerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', runnerSource], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    // The runner has its own deadlines; this guard only catches a runner that hangs itself.
    const guard = setTimeout(() => child.kill('SIGKILL'), guardMs);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      try {
        resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as RunnerResult);
      } catch {
        reject(domainFailure('ExecutionFailed', `the local runner exited ${code} without a result`, { stderr: Buffer.concat(err).toString('utf8').slice(-2000) }));
      }
    });
    child.stdin.end(jobJson);
  });
}
