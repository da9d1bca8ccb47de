import type Docker from 'dockerode';
import { kernelOutputLimitBytes, type KernelCompletion, type KernelRunResult } from '../../domain/compute/compute';
import { domainFailure } from '../../domain/shared/errors';
import { CappedBuffer, execInKernel } from './kernelExec';
import { kernelRunnerPath } from './kernelInit';

/** A runner's reply is one JSON line: results are capped by output_limit, so this only bounds a broken one. */
const maxReplyBytes = 4 * kernelOutputLimitBytes + 64 * 1024;
/** The runner interrupts a run at its timeout and again each second for a minute; past that the node stops waiting. */
const runnerGraceMs = 70_000;
/** Interrupt waits up to 5 s in the runner; complete answers at once. */
const quickCallMs = 20_000;

type RunnerReply = Record<string, unknown> & { error?: string; message?: string };

/**
 * Executes, interrupts and completes in a kernel through its runner (kernelRunner.ts): each is a
 * `docker exec` of the runner in `call` mode as `work`, with the request on stdin and the reply
 * on stdout. The runner keeps the namespace and remembers finished runs by id, so a retried
 * execute joins or repeats the first attempt's answer and never runs the code twice.
 */
export function createKernelRunActivities(docker: Docker) {
  return {
    /**
     * Runs code in the kernel's namespace and answers when it ends. Past `timeoutMs` the runner
     * interrupts it: ExecutionTimeout, and the kernel stays usable. A run going on under
     * another id: InvalidSessionState (one run at a time per kernel).
     */
    async executeInKernel({ containerId, runId, code, stdin, timeoutMs }: { containerId: string; runId: string; code: string; stdin?: string; timeoutMs: number }): Promise<KernelRunResult> {
      const reply = await callRunner(docker, containerId, {
        action: 'execute', run_id: runId, code, stdin: stdin ?? '', timeout_ms: timeoutMs, output_limit: kernelOutputLimitBytes,
      }, timeoutMs + runnerGraceMs);
      if (reply.error === 'busy') {
        throw domainFailure('InvalidSessionState', `run ${String(reply.running)} is still running in the kernel: interrupt it or wait for it`, { running_run_id: reply.running });
      }
      const result: KernelRunResult = {
        runId, status: 'finished', exitCode: Number(reply.exit_code), stdout: String(reply.stdout ?? ''), stderr: String(reply.stderr ?? ''),
        result: reply.result ?? null, resultRepr: typeof reply.result_repr === 'string' ? reply.result_repr : null,
        truncated: reply.truncated === true, interrupted: reply.interrupted === true,
      };
      if (reply.timed_out === true) {
        throw domainFailure('ExecutionTimeout', `run ${runId} did not finish within ${timeoutMs / 1000} s and was interrupted; the kernel stays usable`, {
          run_id: runId, timeout: timeoutMs / 1000, stdout: result.stdout, stderr: result.stderr, truncated: result.truncated,
        });
      }
      return result;
    },

    /** KeyboardInterrupt in the run, if it is the one going on; a finished or unknown run is done already. */
    async interruptKernelRun({ containerId, runId }: { containerId: string; runId: string }): Promise<{ runId: string; running: boolean }> {
      const reply = await callRunner(docker, containerId, { action: 'interrupt', run_id: runId }, quickCallMs);
      return { runId, running: reply.running === true };
    },

    /** Completion candidates at `position` (default: the end) from the kernel's own interpreter and namespace. */
    async completeInKernel({ containerId, code, position }: { containerId: string; code: string; position?: number }): Promise<KernelCompletion> {
      const reply = await callRunner(docker, containerId, { action: 'complete', code, position: position ?? null }, quickCallMs);
      return { candidates: Array.isArray(reply.candidates) ? reply.candidates.map(String) : [] };
    },
  };
}

export type KernelRunActivities = ReturnType<typeof createKernelRunActivities>;

/**
 * One request to the kernel's runner and its reply, heartbeating while it waits (a run may take
 * its whole timeout). A cancelled activity stops waiting; the run itself goes on until it ends
 * or is interrupted. A runner that does not answer (starting, or died and being started again)
 * is a plain error the activity's retry covers; a kernel that is gone or has no runner is named.
 */
async function callRunner(docker: Docker, containerId: string, request: Record<string, unknown>, waitMs: number): Promise<RunnerReply> {
  const stdout = new CappedBuffer(maxReplyBytes);
  const call = await execInKernel(docker, containerId, {
    // Isolated and without site: the relay needs only the standard library, and each exec pays Python's start.
    cmd: ['python3', '-I', '-S', kernelRunnerPath, 'call'], stdin: `${JSON.stringify(request)}\n`, stdout, stderrBytes: 4096, waitMs,
  });
  if (call.outcome === 'late') {
    throw domainFailure('ExecutionTimeout', `the kernel's runner did not answer within ${Math.round(waitMs / 1000)} s (code that ignores KeyboardInterrupt?)`, { run_id: request.run_id });
  }
  const text = stdout.text().trim();
  let reply: RunnerReply | undefined;
  try {
    reply = text ? (JSON.parse(text) as RunnerReply) : undefined;
  } catch {
    reply = undefined;
  }
  if (!reply) {
    const exitCode = await call.exitCode();
    const why = call.stderr.trim();
    if (/No such file|can't open file/i.test(why)) {
      throw domainFailure('KernelFailed', 'this kernel has no runner (it was made before kernels had one): restart the session', { container_id: containerId });
    }
    throw new Error(`the kernel's runner gave no answer (exit ${exitCode ?? 'unknown'}): ${why || text.slice(0, 200)}`);
  }
  // Starting, or being started again after it died: worth another attempt.
  if (reply.error === 'unavailable') throw new Error(reply.message ?? 'the kernel runner does not answer');
  if (reply.error && reply.error !== 'busy') throw domainFailure('KernelFailed', `the kernel's runner refused the request: ${reply.message ?? reply.error}`);
  return reply;
}
