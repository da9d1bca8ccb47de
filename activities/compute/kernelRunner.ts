/**
 * The kernel runner: the program inside every compute kernel that keeps one persistent Python
 * namespace (notebook semantics) and runs code in it, one run at a time. init.sh starts it as
 * `work` (and starts it again should it die: the namespace is then gone, the kernel is not);
 * it listens on a Unix socket in the kernel's state directory. The node reaches it through one
 * long-lived `docker exec` of the same file in `relay` mode per kernel (kernelRun.ts): request
 * lines `{id, request}` on its stdin, each passed to the socket on a connection of its own (a
 * run may take an hour while an interrupt must get through), reply lines `{id, reply}` on its
 * stdout as they come. No port, no network, the kernel's own user.
 *
 * A run answers in segments, each with the output written since the one before: `finished`
 * (with exit_code and the result), `waiting-input` (the code called input() and no stdin was
 * given up front; the prompt is in stdout) and `continued` (the request's wait ended first; the
 * run goes on). Requests (one JSON object a line, one reply a line):
 * - `execute` {run_id, mode: query|batch, code, build, exec, stdin, timeout_ms, wait_ms,
 *   output_limit}: query runs the code in the namespace on the runner's main thread
 *   (print/tracebacks captured; the answer's `result` is the value of the last expression,
 *   else of `result` when the code assigns it; JSON when it is, with `result_repr` always).
 *   batch runs `build` then `exec` (default: code) with /bin/sh in the home directory, as the
 *   kernel's user. `stdin` given is what input() (or the command) reads, EOF after it. A run
 *   past its timeout — time spent waiting for input does not count — gets KeyboardInterrupt
 *   (again each second for a minute; a command gets SIGINT then SIGKILL) and ends `timed_out`.
 *   The same run id again answers the first answer: a retried activity never runs code twice.
 *   Another id while a run goes is answered `busy`. Finished runs are remembered (the last 256).
 * - `input` {run_id, text, request_key, wait_ms}: feeds one line to the run waiting for input
 *   and answers its next segment; `continue` {run_id, request_key, wait_ms}: the run's next
 *   segment. The same request_key again answers the same segment.
 * - `interrupt` {run_id}: KeyboardInterrupt in the running code (SIGINT to the main thread, so
 *   blocking calls such as time.sleep end too); waits up to 5 s for the run to end. A finished
 *   or unknown run is fine (`running: false`).
 * - `complete` {code, position}: candidates at the position from rlcompleter over the
 *   namespace, and module names after `import`/`from`. Answered while a run goes.
 */
export const kernelRunnerSource = String.raw`
import json, os, socket, sys, time

SOCKET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.sock")

def ask(request):
    """One request to the runner on a connection of its own, and its reply. The runner may be
    starting (a kernel just up, or restarted): wait for its socket a little."""
    deadline = time.monotonic() + 10
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(SOCKET)
            break
        except OSError as e:
            s.close()
            if time.monotonic() > deadline:
                return {"error": "unavailable", "message": "the kernel runner does not answer: %s" % e}
            time.sleep(0.1)
    try:
        s.sendall((json.dumps(request) + "\n").encode())
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        s.close()
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {"error": "unavailable", "message": "the kernel runner ended without an answer (it restarts)"}

def relay():
    """The node's side, kept open: each request line is asked on a thread of its own, and its
    reply written back as soon as it comes. The node closing stdin ends the relay."""
    import threading
    out = threading.Lock()
    def one(line):
        try:
            message = json.loads(line)
        except ValueError:
            return
        request = message.get("request")
        # The node's liveness probe: answered here, without the runner (which may be starting).
        reply = {"pong": True} if isinstance(request, dict) and request.get("action") == "ping" else ask(request)
        data = (json.dumps({"id": message.get("id"), "reply": reply}) + "\n").encode()
        with out:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
    for line in sys.stdin.buffer:
        threading.Thread(target=one, args=(line,), daemon=True).start()

def serve():
    import ast, builtins, collections, io, linecache, queue, re, rlcompleter, signal, socketserver, subprocess, threading, traceback

    main_ident = threading.main_thread().ident
    real_streams = sys.stdin, sys.stdout, sys.stderr
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    lock = threading.Lock()
    changed = threading.Condition(lock)
    jobs = queue.Queue()
    finished = collections.OrderedDict()
    state = {"current": None, "in_user_code": False, "cells": 0, "modules": None}
    NO_VALUE = object()
    INPUT_WAIT_SECONDS = 600
    home = os.path.expanduser("~")

    def on_sigint(signum, frame):
        # Only user code is interrupted: a signal that lands between runs is dropped.
        if state["in_user_code"]:
            raise KeyboardInterrupt
    signal.signal(signal.SIGINT, on_sigint)

    class Capped:
        def __init__(self, limit):
            self.parts, self.size, self.limit, self.truncated = [], 0, limit, False
        def add(self, text):
            data = text.encode("utf-8", "replace")
            room = self.limit - self.size
            if len(data) > room:
                data = data[:max(room, 0)]
                self.truncated = True
            if data:
                self.parts.append(data)
                self.size += len(data)
        def text(self):
            return b"".join(self.parts).decode("utf-8", "ignore")

    class Run:
        def __init__(self, request):
            self.id = request["run_id"]
            self.request = request
            self.mode = request.get("mode") or "query"
            self.limit = int(request.get("output_limit") or 65536)
            self.out, self.err = Capped(self.limit), Capped(self.limit)
            self.given = request.get("stdin")
            self.lines = []
            self.fed_keys = set()
            self.waiting = False
            self.segments = collections.deque()
            self.final = None
            self.memo = collections.OrderedDict()
            self.ended = False
            self.timed_out = False
            self.interrupted = False
            self.deadline = time.monotonic() + max(0.001, request.get("timeout_ms", 60000) / 1000.0)

        def write(self, stream, text):
            with lock:
                (self.out if stream == "stdout" else self.err).add(text)

        def cut(self, status, **final):
            """Under the lock: what was written since the last segment becomes one."""
            reply = {"run_id": self.id, "status": status, "exit_code": None, "stdout": self.out.text(), "stderr": self.err.text(),
                     "truncated": self.out.truncated or self.err.truncated, "result": None, "result_repr": None,
                     "timed_out": False, "interrupted": False}
            reply.update(final)
            self.out, self.err = Capped(self.limit), Capped(self.limit)
            self.segments.append(reply)
            changed.notify_all()
            return reply

        def read_line(self):
            if self.given is not None:
                line, sep, rest = self.given.partition("\n")
                self.given = rest
                return line + sep
            with lock:
                if not self.lines:
                    self.waiting = True
                    self.cut("waiting-input")
                    since = time.monotonic()
                    try:
                        while not self.lines:
                            if self.interrupted:
                                raise KeyboardInterrupt
                            if time.monotonic() - since > INPUT_WAIT_SECONDS:
                                raise EOFError("no input came within %d s" % INPUT_WAIT_SECONDS)
                            changed.wait(0.1)
                    finally:
                        self.waiting = False
                        # Time spent waiting for a person is not the run's.
                        self.deadline += time.monotonic() - since
                return self.lines.pop(0)

    class Output(io.TextIOBase):
        def __init__(self, run, name):
            self.run, self.name = run, name
        @property
        def encoding(self):
            return "utf-8"
        def writable(self):
            return True
        def isatty(self):
            return False
        def write(self, text):
            if not isinstance(text, str):
                raise TypeError("write() argument must be str, not %s" % type(text).__name__)
            self.run.write(self.name, text)
            return len(text)

    class Input(io.TextIOBase):
        def __init__(self, run):
            self.run = run
        @property
        def encoding(self):
            return "utf-8"
        def readable(self):
            return True
        def isatty(self):
            return False
        def readline(self, size=-1):
            return self.run.read_line()
        def read(self, size=-1):
            if self.run.given is not None:
                text, self.run.given = self.run.given, ""
                return text
            return self.run.read_line()

    def interrupt_main():
        signal.pthread_kill(main_ident, signal.SIGINT)

    def watchdog(run):
        while True:
            with lock:
                if run.ended:
                    return
                left = run.deadline - time.monotonic()
                waiting = run.waiting
            if left <= 0 and not waiting:
                break
            time.sleep(min(max(left, 0.1), 0.5))
        run.timed_out = True
        # Code that catches KeyboardInterrupt gets it again, each second, for a minute.
        for _ in range(60):
            interrupt_main()
            time.sleep(1.0)
            with lock:
                if run.ended:
                    return

    def run_cell(code, run):
        state["cells"] += 1
        name = "<cell-%d>" % state["cells"]
        # Tracebacks show the cell's lines; code defined in it keeps them later on.
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        tree = ast.parse(code, name, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        assigns_result = any(isinstance(node, ast.Name) and node.id == "result" and isinstance(node.ctx, ast.Store) for node in ast.walk(tree))
        body = compile(tree, name, "exec")
        tail = compile(last, name, "eval") if last is not None else None
        value = NO_VALUE
        try:
            state["in_user_code"] = True
            if run.interrupted:
                raise KeyboardInterrupt
            exec(body, namespace)
            if tail is not None:
                value = eval(tail, namespace)
                # As a notebook shows nothing for None (a print() last, say).
                if value is None:
                    value = NO_VALUE
        finally:
            state["in_user_code"] = False
        if value is NO_VALUE and assigns_result and "result" in namespace:
            value = namespace["result"]
        return value

    runner_file = os.path.abspath(__file__)

    def user_traceback(error):
        """The traceback as the user's code sees it: no frame of the runner (its exec above the
        cell, its SIGINT handler and input below), for the error and the ones it was chained to."""
        report = traceback.TracebackException(type(error), error, error.__traceback__)
        seen, pending = set(), [report]
        while pending:
            each = pending.pop()
            if id(each) in seen:
                continue
            seen.add(id(each))
            each.stack = traceback.StackSummary.from_list([frame for frame in each.stack if frame.filename != runner_file])
            pending.extend(chained for chained in (each.__cause__, each.__context__) if chained is not None)
        return "".join(report.format())

    def run_query(run):
        saved = sys.stdin, sys.stdout, sys.stderr
        sys.stdin, sys.stdout, sys.stderr = Input(run), Output(run, "stdout"), Output(run, "stderr")
        exit_code, value = 0, NO_VALUE
        try:
            value = run_cell(run.request["code"], run)
        except SystemExit as e:
            code = e.code
            if code is None:
                exit_code = 0
            elif isinstance(code, int):
                exit_code = code
            else:
                run.write("stderr", str(code) + "\n")
                exit_code = 1
        except BaseException as e:
            exit_code = 1
            run.write("stderr", user_traceback(e))
        finally:
            state["in_user_code"] = False
            sys.stdin, sys.stdout, sys.stderr = saved
        return exit_code, value

    def pump(pipe, run, name):
        decoder = __import__("codecs").getincrementaldecoder("utf-8")("replace")
        while True:
            data = os.read(pipe.fileno(), 65536)
            if not data:
                break
            run.write(name, decoder.decode(data))
        run.write(name, decoder.decode(b"", final=True))

    def run_command(run, command):
        given = run.request.get("stdin")
        process = subprocess.Popen(["/bin/sh", "-c", command], cwd=home, start_new_session=True,
                                   stdin=subprocess.PIPE if given is not None else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pumps = [threading.Thread(target=pump, args=(process.stdout, run, "stdout"), daemon=True),
                 threading.Thread(target=pump, args=(process.stderr, run, "stderr"), daemon=True)]
        for each in pumps:
            each.start()
        if given is not None:
            def feed():
                try:
                    process.stdin.write(given.encode())
                    process.stdin.close()
                except OSError:
                    pass
            threading.Thread(target=feed, daemon=True).start()
        try:
            try:
                state["in_user_code"] = True
                if run.interrupted:
                    raise KeyboardInterrupt
                code = process.wait()
            finally:
                state["in_user_code"] = False
        except KeyboardInterrupt:
            # The command and everything it started: asked first, then made to.
            for sig, grace in ((signal.SIGINT, 2), (signal.SIGKILL, None)):
                try:
                    os.killpg(process.pid, sig)
                except OSError:
                    pass
                try:
                    process.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
            code = process.wait()
        for each in pumps:
            each.join(5)
        return 128 - code if code < 0 else code

    def run_batch(run):
        request = run.request
        exit_code = 0
        for command in (request.get("build"), request.get("exec") or request.get("code")):
            if not command:
                continue
            exit_code = run_command(run, command)
            if exit_code != 0 or run.interrupted or run.timed_out:
                break
        return exit_code, NO_VALUE

    def final_fields(run, exit_code, value):
        fields = {"exit_code": exit_code, "timed_out": run.timed_out, "interrupted": run.interrupted and not run.timed_out}
        if value is not NO_VALUE:
            try:
                fields["result_repr"] = repr(value)[:4096]
            except Exception as e:
                fields["result_repr"] = "<repr failed: %s>" % type(e).__name__
            try:
                encoded = json.dumps(value, allow_nan=False)
                if len(encoded) <= run.limit:
                    fields["result"] = value
            except (TypeError, ValueError, RecursionError):
                pass
        return fields

    def find(run_id):
        current = state["current"]
        return current if current is not None and current.id == run_id else finished.get(run_id)

    def next_segment(run, key, wait_ms):
        """Under the lock: the run's next segment for this request — one cut and not yet given,
        else the next one cut, else at the wait's end what was written so far (continued). The
        same key again gets the same segment; an ended run with nothing new gets its last."""
        if key in run.memo:
            return run.memo[key]
        deadline = None if wait_ms is None else time.monotonic() + max(0, wait_ms) / 1000.0
        while not run.segments:
            if run.ended:
                return run.final
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                run.cut("continued")
                break
            changed.wait(1.0 if left is None else min(left, 1.0))
        reply = run.segments.popleft()
        if reply["status"] == "finished":
            run.final = reply
        run.memo[key] = reply
        while len(run.memo) > 32:
            run.memo.popitem(last=False)
        return reply

    def execute(request):
        with lock:
            run = find(request["run_id"])
            if run is None:
                current = state["current"]
                if current is not None:
                    return {"error": "busy", "running": current.id}
                run = Run(request)
                state["current"] = run
                jobs.put(run)
            return next_segment(run, "execute", request.get("wait_ms"))

    def feed(request):
        with lock:
            run = find(request["run_id"])
            if run is None:
                return {"error": "unknown-run", "message": "no run %s in this kernel" % request["run_id"]}
            key = "input/" + request["request_key"]
            if key not in run.fed_keys:
                if run.ended or not run.waiting:
                    return {"error": "not-waiting", "message": "run %s is %s, not waiting for input" % (run.id, "finished" if run.ended else "running")}
                text = request.get("text") or ""
                run.lines.append(text if text.endswith("\n") else text + "\n")
                run.fed_keys.add(key)
                changed.notify_all()
            return next_segment(run, key, request.get("wait_ms"))

    def resume(request):
        with lock:
            run = find(request["run_id"])
            if run is None:
                return {"error": "unknown-run", "message": "no run %s in this kernel" % request["run_id"]}
            return next_segment(run, "continue/" + request["request_key"], request.get("wait_ms"))

    def interrupt(request):
        with lock:
            run = state["current"]
            if run is None or run.id != request["run_id"]:
                return {"run_id": request["run_id"], "running": False}
            run.interrupted = True
            changed.notify_all()
            if state["in_user_code"]:
                interrupt_main()
            deadline = time.monotonic() + 5
            while not run.ended and time.monotonic() < deadline:
                changed.wait(0.2)
            return {"run_id": run.id, "running": not run.ended}

    def module_names():
        if state["modules"] is None:
            import pkgutil
            names = set(sys.builtin_module_names)
            names.update(m.name for m in pkgutil.iter_modules())
            state["modules"] = sorted(n for n in names if not n.startswith("_"))
        return state["modules"]

    def complete(request):
        code = request.get("code") or ""
        position = request.get("position")
        before = code if position is None else code[:max(0, min(int(position), len(code)))]
        line = before.rsplit("\n", 1)[-1]
        imported = re.match(r"\s*(?:import\s+(?:[\w.]+\s*,\s*)*|from\s+)([\w.]*)$", line)
        if imported:
            word = imported.group(1)
            if "." in word:
                parent, _, prefix = word.rpartition(".")
                package = sys.modules.get(parent)
                import pkgutil
                subs = [m.name for m in pkgutil.iter_modules(getattr(package, "__path__", None) or [])]
                return {"candidates": [parent + "." + n for n in sorted(subs) if n.startswith(prefix)][:200]}
            return {"candidates": [n for n in module_names() if n.startswith(word)][:200]}
        word = re.search(r"[\w.]*$", line).group(0)
        if not word:
            return {"candidates": []}
        completer = rlcompleter.Completer(namespace)
        candidates = []
        for i in range(1000):
            try:
                found = completer.complete(word, i)
            except Exception:
                break
            if found is None or len(candidates) >= 200:
                break
            found = found.rstrip("( ")
            if found not in candidates:
                candidates.append(found)
        return {"candidates": candidates}

    actions = {"execute": execute, "input": feed, "continue": resume, "interrupt": interrupt, "complete": complete}

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            try:
                request = json.loads(self.rfile.readline())
                action = actions.get(request.get("action"))
                reply = action(request) if action else {"error": "bad-request", "message": "unknown action %r" % request.get("action")}
            except Exception as e:
                reply = {"error": "runner", "message": "%s: %s" % (type(e).__name__, e)}
            self.wfile.write((json.dumps(reply) + "\n").encode())

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    try:
        os.unlink(SOCKET)
    except FileNotFoundError:
        pass
    os.umask(0o077)
    server = Server(SOCKET, Handler)
    os.umask(0o022)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stderr.write("sessionflow kernel runner: listening on %s\n" % SOCKET)
    sys.stderr.flush()

    while True:
        try:
            run = jobs.get()
        except KeyboardInterrupt:
            continue
        threading.Thread(target=watchdog, args=(run,), daemon=True).start()
        exit_code, value = 1, NO_VALUE
        try:
            exit_code, value = (run_batch if run.mode == "batch" else run_query)(run)
        except BaseException as e:
            sys.stdin, sys.stdout, sys.stderr = real_streams
            # A KeyboardInterrupt at the very end of a run (after its own handler): still the run's.
            run.write("stderr", "".join(traceback.format_exception_only(type(e), e)))
        with lock:
            run.ended = True
            run.final = run.cut("finished", **final_fields(run, exit_code, value))
            finished[run.id] = run
            while len(finished) > 256:
                finished.popitem(last=False)
            state["current"] = None

if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    elif sys.argv[1:] == ["relay"]:
        relay()
    else:
        sys.exit("usage: kernel_runner.py serve|relay")
`;
