import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createUserKey } from '../../api/platform/auth';
import { createExecutionStore } from '../../activities/execution/store';
import { runnerLabel, runnerSource } from '../../activities/execution/executionRunner';
import { findRuntime, runtimes } from '../../domain/execution/execution';
import { executionJob as job } from '../helpers/executionPools';
import { fileToolsOutput, fileToolsScript } from '../helpers/fileTools';
import { openInfra, type Infra } from '../helpers/infra';

let infra: Infra;
let containerId: string;
let ownerId: string;
beforeAll(async () => {
  infra = openInfra();
  containerId = await infra.activities.createExecutionContainer({ name: `sf-exec-test-${randomUUID().slice(0, 8)}`, image: infra.config.EXECUTION_IMAGE, runtime: 'python', pool: 'integration-test' });
  ({ userId: ownerId } = await createUserKey(infra.pool, `exec-${randomUUID().slice(0, 8)}`, 'user', 'test'));
});
afterAll(async () => {
  await infra.activities.removeExecutionContainer({ containerId });
  await infra.close();
});

const python = findRuntime('python', '*')!;
const bash = findRuntime('bash', '*')!;

describe('execution containers', () => {
  it('hold every runtime of the catalogue at the version it reports', () => {
    const versionOf: Record<string, string[]> = { python: ['python3', '--version'], javascript: ['node', '--version'], bash: ['bash', '--version'], c: ['gcc', '--version'] };
    for (const runtime of runtimes) {
      expect(execFileSync('docker', ['exec', containerId, ...versionOf[runtime.language]!], { encoding: 'utf8' })).toContain(runtime.version);
    }
  });

  it('run a program as nobody, record the full result and return it cut for history', async () => {
    const runJob = job(python, 'import os\nname = input()\nprint(f"Hello, {name}", os.getuid())\nprint("y" * 100)', { stdin: 'Alice' });
    const { result, truncated } = await infra.activities.runInContainer({ containerId, job: runJob, ownerId, historyOutputCap: 20 });
    expect(truncated).toBe(true);
    expect(result.run?.stdout).toBe('Hello, Alice 65534\ny');
    const recorded = await createExecutionStore(infra.pool).result(runJob.requestId, ownerId);
    expect(recorded?.run).toMatchObject({ stdout: `Hello, Alice 65534\n${'y'.repeat(100)}\n`, code: 0, signal: null, status: null });
  });

  it('answer a job sent twice from memory instead of running it again', async () => {
    const code = 'with open("runs", "a") as f:\n    f.write("x")\nprint(len(open("runs").read()))';
    const first = job(python, code, { sessionKey: `${ownerId}/twice` });
    const once = await infra.activities.runInContainer({ containerId, job: first, ownerId, historyOutputCap: 1000 });
    const again = await infra.activities.runInContainer({ containerId, job: first, ownerId, historyOutputCap: 1000 });
    expect([once.result.run?.stdout, again.result.run?.stdout]).toEqual(['1\n', '1\n']);
    const next = await infra.activities.runInContainer({ containerId, job: { ...first, requestId: randomUUID() }, ownerId, historyOutputCap: 1000 });
    expect(next.result.run?.stdout).toBe('2\n');
  });

  it('keep user code away from the runner', async () => {
    const code = [
      'import os, signal',
      'def runner():',
      '    for pid in filter(str.isdigit, os.listdir("/proc")):',
      '        try:',
      '            args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")[:-1]',
      '            uid = next(line.split()[1] for line in open(f"/proc/{pid}/status") if line.startswith("Uid:"))',
      '        except OSError:',
      '            continue',
      '        if args and args[0].startswith(b"python") and args[-1] == b"serve" and uid == "0":',
      '            return int(pid)',
      'pid = runner()',
      'print("runner found" if pid else "no runner")',
      'for name, attempt in [("kill", lambda: os.kill(pid, signal.SIGKILL)), ("stdin", lambda: open(f"/proc/{pid}/fd/0")), ("stdout", lambda: open(f"/proc/{pid}/fd/1", "w"))]:',
      '    try:',
      '        attempt()',
      '        print(name, "allowed")',
      '    except PermissionError:',
      '        print(name, "denied")',
      'print(os.getuid())',
    ].join('\n');
    const { result } = await infra.activities.runInContainer({ containerId, job: job(python, code), ownerId, historyOutputCap: 1000 });
    expect(result.run?.stdout).toBe('runner found\nkill denied\nstdin denied\nstdout denied\n65534\n');
    const after = await infra.activities.runInContainer({ containerId, job: job(python, 'print("still served")'), ownerId, historyOutputCap: 1000 });
    expect(after.result.run?.stdout).toBe('still served\n');
  });

  it('let a bash job list, stat, copy, measure and find files under gVisor', async () => {
    const { result } = await infra.activities.runInContainer({ containerId, job: job(bash, fileToolsScript), ownerId, historyOutputCap: 1000 });
    expect(result.run).toMatchObject({ stdout: fileToolsOutput, stderr: '', code: 0 });
  });

  it('run jobs as nobody with no capabilities', async () => {
    const code = 'import os\nprint(os.getuid(), os.getgid())\nprint(next(line for line in open("/proc/self/status") if line.startswith("CapEff:")), end="")';
    const { result } = await infra.activities.runInContainer({ containerId, job: job(python, code), ownerId, historyOutputCap: 1000 });
    expect(result.run?.stdout).toBe('65534 65534\nCapEff:\t0000000000000000\n');
  });

  it('remove the System V shared memory and message queues a job made, job after job (gVisor lists none in /proc)', async () => {
    const ipc = 'import ctypes\nc = ctypes.CDLL(None)\nb = ctypes.create_string_buffer(512)\n';
    const make = `${ipc}print(c.shmget(0, 4096, 0o1600) >= 0, c.shmget(0x5f10, 4096, 0o1600) >= 0, c.msgget(0, 0o1600) >= 0)`;
    // Found by id, as gVisor allows, and by key, as a next program would meet them.
    const count = `${ipc}print(sum((c.shmctl(i, 2, b) == 0) + (c.msgctl(i, 2, b) == 0) for i in range(512)), c.shmget(0x5f10, 0, 0) >= 0)`;
    for (let round = 0; round < 3; round++) {
      const made = await infra.activities.runInContainer({ containerId, job: job(python, make), ownerId, historyOutputCap: 1000 });
      expect(made.result.run?.stdout).toBe('True True True\n');
      const left = await infra.activities.runInContainer({ containerId, job: job(python, count), ownerId, historyOutputCap: 1000 });
      expect([round, left.result.run?.stdout]).toEqual([round, '0 False\n']);
    }
  });

  it('ask to be retired when a stateless run leaves what they cannot remove, and not otherwise', async () => {
    const ordinary = await infra.activities.runInContainer({ containerId, job: job(python, 'open("/tmp/x", "w").write("x")'), ownerId, historyOutputCap: 1000 });
    expect(ordinary.retire).toBeUndefined();
    // Deeper than the runner's clean-up can follow: the container is not handed to anyone again.
    const deep = 'import os\nos.chdir("/work")\nfor _ in range(3000):\n    os.mkdir("d")\n    os.chdir("d")\nprint("deep")';
    const { result, retire } = await infra.activities.runInContainer({ containerId, job: job(python, deep), ownerId, historyOutputCap: 1000 });
    expect([result.run?.stdout, retire]).toEqual(['deep\n', true]);
  });

  it('are removed by the orphan sweep when their pool does not know them', async () => {
    const orphan = await infra.activities.createExecutionContainer({ name: `sf-exec-orphan-${randomUUID().slice(0, 8)}`, image: infra.config.EXECUTION_IMAGE, runtime: 'python', pool: 'integration-orphans' });
    expect(await infra.activities.removeOrphanExecutionContainers({ pool: 'integration-orphans', keep: [] })).toEqual([orphan]);
    await expect(infra.docker.getContainer(orphan).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  describe('made with another runner (a pool older than the worker)', () => {
    async function staleContainer(name: string): Promise<string> {
      const container = await infra.docker.createContainer({
        name, Image: infra.config.EXECUTION_IMAGE, Cmd: ['python3', '-c', runnerSource, 'serve'], OpenStdin: true, NetworkDisabled: true,
        Labels: { 'org.sessionflow.managed': 'true', 'org.sessionflow.instance': infra.config.SESSIONFLOW_INSTANCE, [runnerLabel]: 'an-older-runner' },
      });
      await container.start();
      return container.id;
    }

    it('are passed over before any job reaches them', async () => {
      const stale = await staleContainer(`sf-exec-stale-${randomUUID().slice(0, 8)}`);
      try {
        await expect(infra.activities.runInContainer({ containerId: stale, job: job(python, 'print(1)'), ownerId, historyOutputCap: 100 }))
          .rejects.toMatchObject({ type: 'ContainerLost', details: [{ containerId: stale, duringRun: false }] });
      } finally {
        await infra.activities.removeExecutionContainer({ containerId: stale });
      }
    });

    it('are made again by a create under their name', async () => {
      const name = `sf-exec-stale-${randomUUID().slice(0, 8)}`;
      const stale = await staleContainer(name);
      const made = await infra.activities.createExecutionContainer({ name, image: infra.config.EXECUTION_IMAGE, runtime: 'python', pool: 'integration-test' });
      try {
        expect(made).not.toBe(stale);
        const { result } = await infra.activities.runInContainer({ containerId: made, job: job(python, 'print(6 * 7)'), ownerId, historyOutputCap: 100 });
        expect(result.run?.stdout).toBe('42\n');
      } finally {
        await infra.activities.removeExecutionContainer({ containerId: made });
      }
    });
  });
});
