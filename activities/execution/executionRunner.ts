import { createHash } from 'node:crypto';
import type { ExecutionJob, ExecutionResult, StageSpec, UnwritableFile } from '../../domain/execution/execution';

/**
 * The program that carries out one execution job, wherever it runs. It writes the job's files
 * into a work directory, runs the compile and run stages with rlimits, a SIGKILL deadline and
 * per-stream output caps, and reports the Piston result as JSON. Python because every runtime
 * image has it.
 *
 * Two modes:
 * - `serve` — the main process of an execution container, for the container's whole life (no
 *   Python start-up, no `docker exec` per execution). It reads jobs as JSON lines on stdin
 *   (the api or worker attaches to the container) and answers each with a JSON line on stdout.
 *   It runs as root with only SETUID, SETGID and KILL, and forks each job into a child that
 *   becomes the sandbox user (nobody) before touching the job: user code can neither signal
 *   the runner nor read its streams. A job is acknowledged (`accepted`) before any user code
 *   runs, then answered. Replies are kept by job id, so a job sent twice (a retried execution)
 *   runs once.
 * - one-shot (no argument) — the local executor's subprocess: one job on stdin, the result on
 *   stdout.
 *
 * `kill_all` (containers only): after each stage, SIGKILL every process of the sandbox user
 * (kill(-1) spares the caller), so nothing a program left running survives into the next job.
 */
export const runnerSource = String.raw`
import base64, collections, ctypes, errno, json, os, resource, select, selectors, shutil, signal, subprocess, sys, threading, time, traceback

SANDBOX_UID = SANDBOX_GID = 65534

# Everything a sandboxed program can write to in an execution container (the root is read-only).
WRITABLE_AREAS = ("/work", "/tmp", "/dev/shm", "/dev/mqueue")
# Under gVisor: the id after the last System V shared memory segment and message queue removed
# by id (see remove_ipc_by_id); the serving runner keeps them from job to job.
IPC_MARKS = {"shm": 0, "msg": 0}

def empty_dir(area):
    """Removes what is in area. Runs as the sandbox user, the owner of all of it: root here lacks
    CAP_DAC_OVERRIDE and could not enter a directory a program made mode 000, so every directory
    is opened up (top down, before it is listed) and then removed."""
    try:
        names = os.listdir(area)
    except OSError:
        return
    for name in names:
        target = os.path.join(area, name)
        try:
            if os.path.isdir(target) and not os.path.islink(target):
                os.chmod(target, 0o700)
                for parent, dirs, _ in os.walk(target):
                    for d in dirs:
                        try:
                            os.chmod(os.path.join(parent, d), 0o700)
                        except OSError:
                            pass
                shutil.rmtree(target, ignore_errors=True)
            else:
                os.unlink(target)
        except Exception:
            pass  # what stays is found by the check in reset_writable_state

def reset_writable_state():
    """Empties every writable area and removes the sandbox user's System V IPC objects, so the
    next job, another user's perhaps, finds nothing a previous one left: no files, no planted
    node_modules on its resolution path, no shared memory. Says whether it all went: a container
    that cannot be emptied (a tree too deep to remove, say) is retired rather than handed on."""
    for area in WRITABLE_AREAS:
        empty_dir(area)
    if os.path.isdir("/proc/sysvipc"):
        remove_own_ipc()
    else:
        remove_ipc_by_id()
    return not leftovers()

def leftovers():
    return any(os.listdir(area) for area in WRITABLE_AREAS if os.path.isdir(area))

def remove_own_ipc():
    """Every System V shared memory segment, semaphore set and message queue this user owns, as
    the kernel lists them, removed in process (a subprocess per job is a fork too many under gVisor)."""
    libc = ctypes.CDLL(None, use_errno=True)
    remove = {"shm": lambda i: libc.shmctl(i, 0, None), "sem": lambda i: libc.semctl(i, 0, 0), "msg": lambda i: libc.msgctl(i, 0, None)}
    uid = str(os.getuid())
    for kind, rm in remove.items():
        try:
            with open("/proc/sysvipc/" + kind) as table:
                header, *rows = [line.split() for line in table]
            owner, ident = header.index("uid"), header.index(kind + "id" if kind != "msg" else "msqid")
        except (OSError, ValueError):
            continue
        for row in rows:
            if len(row) > owner and row[owner] == uid:
                rm(int(row[ident]))

def remove_ipc_by_id():
    """gVisor (runsc) has no /proc/sysvipc and answers neither SHM_STAT nor MSG_STAT, so ipcrm
    finds no shared memory segment or message queue there. It hands their ids out in sequence,
    never one twice, though: a new probe's id bounds every id made since the last probe, and all
    of those go, the probe with them. Should the probe fail (a program made all it may), the next
    4096 ids go now and the rest at the next reset; a kernel without System V IPC has none to go."""
    libc = ctypes.CDLL(None, use_errno=True)
    calls = {"shm": (lambda: libc.shmget(0, 1, 0o1600), lambda ipc_id: libc.shmctl(ipc_id, 0, None)),
             "msg": (lambda: libc.msgget(0, 0o1600), lambda ipc_id: libc.msgctl(ipc_id, 0, None))}
    for kind, (make, remove) in calls.items():
        start = IPC_MARKS[kind]
        probe = make()
        if probe < 0 and ctypes.get_errno() == errno.ENOSYS:
            continue
        end = probe if probe >= 0 else start + 4096
        for ipc_id in range(start, end + 1):
            remove(ipc_id)
        IPC_MARKS[kind] = end + 1

def write_files(job):
    """The job's files into its work directory; the first one that cannot be written, if any.
    The api only sends names it can honour, but a session's work directory keeps what earlier
    programs left there (a directory where a file goes, a file made read-only): the request's
    problem, answered as such, not a fault of the runner."""
    for index, f in enumerate(job["files"]):
        path = os.path.join(job["work_dir"], f["name"])
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                out.write(base64.b64decode(f["content"]))
        except OSError as e:
            return {"index": index, "reason": e.strerror or str(e)}
    return None

def run_job(job):
    work = job["work_dir"]
    if job.get("kill_all") and not os.path.exists(work) and leftovers():
        # A fresh work directory means a new owner of the container: nothing may be left for it
        # (the previous job's own reset leaves nothing, so this costs four directory listings).
        reset_writable_state()

    def limits(memory, fsize, nproc):
        def apply():
            os.setsid()
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if memory > 0:
                resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            if fsize > 0:
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            if nproc > 0:
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        return apply

    def kill_leftovers(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if job.get("kill_all"):
            # Repeat: a fork bomb can create processes while one pass of signals goes out. Until
            # none is left, zombies included: the killed count against the pids limit until
            # init reaps them, and the next job's fork (or thread) must not meet a full limit.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                if not others_alive():
                    break
                time.sleep(0.005)

    def others_alive():
        """Whether a process of the sandbox user other than this one is left, zombies included
        (our own unreaped children aside: the stage waits for them)."""
        me, uid = os.getpid(), os.getuid()
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == me:
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
                if os.stat("/proc/" + pid).st_uid != uid:
                    continue
                if state != "Z" or int(ppid) != me:
                    return True
            except (OSError, IndexError, ValueError):
                pass
        return False

    def stage(spec, stdin):
        cap = job["output_limit"]
        started = time.monotonic()
        proc = subprocess.Popen(spec["command"], cwd=work, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=limits(spec["memory_limit"], job.get("file_size_limit", 0), job.get("process_limit", 0)))
        def feed():
            try:
                proc.stdin.write(stdin)
            except Exception:
                pass
            try:
                proc.stdin.close()
            except Exception:
                pass
        threading.Thread(target=feed, daemon=True).start()
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
        sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
        streams = {"stdout": bytearray(), "stderr": bytearray()}
        output = bytearray()
        status, message, rusage, waited = None, None, None, None
        deadline = started + spec["timeout_ms"] / 1000.0
        while sel.get_map():
            if waited is None:
                pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    waited, rusage = st, ru
                    # The program is done; anything it left behind must not hold our pipes open.
                    kill_leftovers(proc.pid)
            remaining = deadline - time.monotonic()
            if remaining <= 0 and waited is None:
                status, message = "TO", "Timeout"
                kill_leftovers(proc.pid)
                deadline = float("inf")
            for key, _ in sel.select(timeout=min(max(remaining, 0), 0.05) if waited is None else 0.05):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = streams[key.data]
                room = cap - len(buf)
                buf += chunk[:max(room, 0)]
                output += chunk[:max(room, 0)]
                if len(chunk) > room and status is None:
                    status = "OL" if key.data == "stdout" else "EL"
                    message = key.data + " length exceeded"
                    kill_leftovers(proc.pid)
        if waited is None:
            _, waited, rusage = os.wait4(proc.pid, 0)
        wall = int((time.monotonic() - started) * 1000)
        code, sig = None, None
        if os.WIFSIGNALED(waited):
            sig = signal.Signals(os.WTERMSIG(waited)).name
            if status is None:
                status, message = "SG", "Killed by " + sig
        else:
            code = os.WEXITSTATUS(waited)
            if code != 0 and status is None:
                status, message = "RE", "Exited with error status " + str(code)
        return {
            "stdout": streams["stdout"].decode("utf-8", "replace"),
            "stderr": streams["stderr"].decode("utf-8", "replace"),
            "output": output.decode("utf-8", "replace"),
            "code": code, "signal": sig, "message": message, "status": status,
            "cpu_time": int((rusage.ru_utime + rusage.ru_stime) * 1000),
            "wall_time": wall,
            "memory": rusage.ru_maxrss * 1024,
        }

    result = {}
    try:
        unwritable = write_files(job)
        if unwritable:
            return {"unwritable_file": unwritable}
        if job.get("compile"):
            result["compile"] = stage(job["compile"], b"")
        if "compile" not in result or result["compile"]["code"] == 0:
            result["run"] = stage(job["run"], job["stdin"].encode("utf-8"))
    finally:
        if job.get("kill_all") and not job.get("keep_work_dir"):
            job["unclean"] = not reset_writable_state()
        elif not job.get("keep_work_dir"):
            shutil.rmtree(work, ignore_errors=True)
        elif job.get("kill_all"):
            # A session keeps its work directory; what it puts in /tmp lasts one execution.
            empty_dir("/tmp")
    return result

def run_as_sandbox_user(job):
    """Forks a child that drops to the sandbox user for good, runs the job, and hands back its
    result through a pipe. The child's descriptors 0-2 are /dev/null: user code never sees the
    daemon's streams, where other jobs arrive."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(reader)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.setgroups([])
            os.setgid(SANDBOX_GID)
            os.setuid(SANDBOX_UID)
            os.environ["HOME"] = job["work_dir"]
            os.environ["USER"] = "nobody"
            try:
                reply = {"result": run_job(job)}
                if job.get("unclean"):
                    reply["unclean"] = True
            except Exception:
                reply = {"error": traceback.format_exc(limit=4)[-2000:]}
            reply["ipc_marks"] = IPC_MARKS
            payload = memoryview(json.dumps(reply).encode("utf-8"))
            while payload:
                payload = payload[os.write(writer, payload):]
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    # The job bounds itself; this guard only catches a child that hangs in the runner's own code.
    guard = time.monotonic() + (job["run"]["timeout_ms"] + (job.get("compile") or {}).get("timeout_ms", 0)) / 1000.0 + 30
    chunks = []
    while True:
        ready, _, _ = select.select([reader], [], [], max(guard - time.monotonic(), 0))
        if not ready:
            os.kill(-1, signal.SIGKILL)  # root with CAP_KILL: every process of the container but init and us
            break
        chunk = os.read(reader, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(reader)
    os.waitpid(pid, 0)
    try:
        # Parsed, not passed through: only a well-formed reply leaves the container, as one line.
        reply = json.loads(b"".join(chunks))
        if isinstance(reply, dict) and ("result" in reply or "error" in reply):
            marks = reply.get("ipc_marks")
            if isinstance(marks, dict):
                IPC_MARKS.update((kind, mark) for kind, mark in marks.items() if kind in IPC_MARKS and isinstance(mark, int))
            return {key: reply[key] for key in ("result", "error", "unclean") if key in reply}
    except ValueError:
        pass
    return {"error": "the job ended without a result"}

def serve():
    """The long-lived runner of an execution container: one JSON job per line on stdin, one JSON
    reply per line on stdout, jobs one at a time. A job id seen before gets the same reply again
    without running twice, so a retried execution never re-runs user code."""
    replies = collections.OrderedDict()
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
            job_id = request["id"]
        except (ValueError, KeyError, TypeError):
            sys.stderr.write("runner: unreadable request\n")
            sys.stderr.flush()
            continue
        if job_id not in replies:
            # Said before any user code starts: a job lost without this line can go elsewhere.
            sys.stdout.write(json.dumps({"id": job_id, "accepted": True}) + "\n")
            sys.stdout.flush()
            replies[job_id] = run_as_sandbox_user(request["job"])
            while len(replies) > 16:
                replies.popitem(last=False)
        sys.stdout.write(json.dumps(dict(replies[job_id], id=job_id)) + "\n")
        sys.stdout.flush()

if sys.argv[1:] == ["serve"]:
    serve()
else:
    sys.stdout.write(json.dumps(run_job(json.loads(sys.stdin.buffer.read()))))
`;

/** The job as the runner reads it (snake_case: it is Python's side of the contract). */
/**
 * Names the runner a container was made with (a container label). The runner is the container's
 * main process, fixed at its creation, so a pool's containers can outlive the code that speaks
 * to them (a deploy, a restarted worker): one made by another runner is not used, but replaced.
 */
export const runnerDigest = createHash('sha256').update(runnerSource).digest('hex').slice(0, 16);
export const runnerLabel = 'org.sessionflow.runner';

export interface RunnerJob {
  work_dir: string;
  keep_work_dir: boolean;
  kill_all: boolean;
  files: { name: string; content: string }[];
  stdin: string;
  output_limit: number;
  file_size_limit: number;
  process_limit: number;
  compile?: RunnerStage;
  run: RunnerStage;
}

interface RunnerStage {
  command: string[];
  timeout_ms: number;
  memory_limit: number;
}

interface RunnerPlacement {
  workDir: string;
  keepWorkDir: boolean;
  killAll: boolean;
  fileSizeLimit: number;
  processLimit: number;
}

/** The runner's job for an execution job: commands expanded, snake_case, args appended to run. */
export function toRunnerJob(job: ExecutionJob, placement: RunnerPlacement): RunnerJob {
  const entry = job.files[0]?.name ?? '';
  const expand = (command: string[]) => command.flatMap((part) => (part === '{file}' ? [entry] : part === '{files}' ? job.files.map((f) => f.name) : [part]));
  const stage = (spec: StageSpec, extraArgs: string[] = []): RunnerStage => ({ command: [...expand(spec.command), ...extraArgs], timeout_ms: spec.timeoutMs, memory_limit: spec.memoryLimit });
  return {
    work_dir: placement.workDir,
    keep_work_dir: placement.keepWorkDir,
    kill_all: placement.killAll,
    files: job.files,
    stdin: job.stdin,
    output_limit: job.outputLimit,
    file_size_limit: placement.fileSizeLimit,
    process_limit: placement.processLimit,
    compile: job.compile && stage(job.compile),
    run: stage(job.run, job.args),
  };
}

type RunnerStages = Omit<ExecutionResult, 'language' | 'version'>;

/** The runner's result of a job: the stages it ran, or the file it could not write (then nothing ran). */
export type RunnerResult = RunnerStages & { unwritable_file?: UnwritableFile };

/** A runner result's stages, and the file it could not write if it turned the job down. */
export function splitRunnerResult({ unwritable_file: unwritableFile, ...stages }: RunnerResult): { stages: RunnerStages; unwritableFile?: UnwritableFile } {
  return { stages, ...(unwritableFile ? { unwritableFile } : {}) };
}
