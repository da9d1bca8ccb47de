/**
 * The kernel runner: the program inside every compute kernel that keeps one persistent Python
 * namespace (notebook semantics) and runs code in it, one run at a time. init.sh starts it as
 * `work` (and starts it again should it die: the namespace is then gone, the kernel is not);
 * it listens on a Unix socket in the kernel's state directory. The node reaches it through
 * `docker exec` of the same file in `call` mode, which relays one JSON request line from its
 * stdin to the socket and the reply line back to its stdout: no port, no network, the kernel's
 * own user.
 *
 * Requests (one JSON object a line, one reply a line):
 * - `execute` {run_id, code, stdin, timeout_ms, output_limit}: runs the code in the namespace
 *   on the runner's main thread. stdout/stderr are Python-level (print, tracebacks), each kept
 *   up to output_limit bytes and marked truncated beyond; `stdin` is what input() reads (EOF
 *   after it). The answer's `result` is the value of the last expression, else of `result`
 *   when the code assigns it; JSON when it is, with `result_repr` always. A run past its
 *   timeout gets KeyboardInterrupt (again each second) and is answered `timed_out`. Finished
 *   runs are remembered by id (the last 256): the same id again answers from memory, and
 *   joins the run while it is going — a retried activity never runs user code twice. Another
 *   id while a run goes is answered `busy`.
 * - `interrupt` {run_id}: KeyboardInterrupt in the running code (SIGINT to the main thread, so
 *   blocking calls such as time.sleep end too); waits up to 5 s for the run to end. A finished
 *   or unknown run is fine (`running: false`).
 * - `complete` {code, position}: candidates at the position from rlcompleter over the
 *   namespace, and module names after `import`/`from`. Answered while a run goes.
 */
export const kernelRunnerSource = String.raw`
import json, os, socket, sys, time

SOCKET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.sock")

def call():
    """The node's side: one request from stdin to the runner, its reply to stdout. The runner
    may be starting (a kernel just up, or restarted): wait for its socket a little."""
    request = sys.stdin.buffer.read()
    deadline = time.monotonic() + 10
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(SOCKET)
            break
        except OSError as e:
            s.close()
            if time.monotonic() > deadline:
                sys.stdout.write(json.dumps({"error": "unavailable", "message": "the kernel runner does not answer: %s" % e}) + "\n")
                sys.exit(3)
            time.sleep(0.1)
    s.sendall(request.rstrip(b"\n") + b"\n")
    chunks = []
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    sys.stdout.buffer.write(b"".join(chunks))

def serve():
    import ast, builtins, collections, io, linecache, queue, re, rlcompleter, signal, socketserver, threading, traceback

    main_ident = threading.main_thread().ident
    real_streams = sys.stdin, sys.stdout, sys.stderr
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    lock = threading.Lock()
    jobs = queue.Queue()
    finished = collections.OrderedDict()
    state = {"current": None, "in_user_code": False, "cells": 0, "modules": None}
    NO_VALUE = object()

    def on_sigint(signum, frame):
        # Only user code is interrupted: a signal that lands between runs is dropped.
        if state["in_user_code"]:
            raise KeyboardInterrupt
    signal.signal(signal.SIGINT, on_sigint)

    class Capped(io.TextIOBase):
        def __init__(self, limit):
            self.parts, self.size, self.limit, self.truncated = [], 0, limit, False
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
            data = text.encode("utf-8", "replace")
            room = self.limit - self.size
            if len(data) > room:
                data = data[:max(room, 0)]
                self.truncated = True
            if data:
                self.parts.append(data)
                self.size += len(data)
            return len(text)
        def text(self):
            return b"".join(self.parts).decode("utf-8", "ignore")

    class Run:
        def __init__(self, request):
            self.id = request["run_id"]
            self.request = request
            self.done = threading.Event()
            self.reply = None
            self.timed_out = False
            self.interrupted = False

    def interrupt_main():
        signal.pthread_kill(main_ident, signal.SIGINT)

    def watchdog(run, seconds):
        if run.done.wait(seconds):
            return
        run.timed_out = True
        # Code that catches KeyboardInterrupt gets it again, each second, for a minute.
        for _ in range(60):
            interrupt_main()
            if run.done.wait(1.0):
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
        cell, its SIGINT handler below), for the error and the ones it was chained to."""
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

    def execute_run(run):
        request = run.request
        limit = int(request.get("output_limit") or 65536)
        out, err = Capped(limit), Capped(limit)
        saved = sys.stdin, sys.stdout, sys.stderr
        sys.stdin, sys.stdout, sys.stderr = io.StringIO(request.get("stdin") or ""), out, err
        exit_code, value = 0, NO_VALUE
        try:
            value = run_cell(request["code"], run)
        except SystemExit as e:
            code = e.code
            if code is None:
                exit_code = 0
            elif isinstance(code, int):
                exit_code = code
            else:
                err.write(str(code) + "\n")
                exit_code = 1
        except BaseException as e:
            exit_code = 1
            err.write(user_traceback(e))
        finally:
            state["in_user_code"] = False
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            sys.stdin, sys.stdout, sys.stderr = saved
        reply = {"run_id": run.id, "status": "finished", "exit_code": exit_code, "stdout": out.text(), "stderr": err.text(),
                 "truncated": out.truncated or err.truncated, "result": None, "result_repr": None,
                 "timed_out": run.timed_out, "interrupted": run.interrupted and not run.timed_out}
        if value is not NO_VALUE:
            try:
                reply["result_repr"] = repr(value)[:4096]
            except Exception as e:
                reply["result_repr"] = "<repr failed: %s>" % type(e).__name__
            try:
                encoded = json.dumps(value, allow_nan=False)
                if len(encoded) <= limit:
                    reply["result"] = value
            except (TypeError, ValueError, RecursionError):
                pass
        return reply

    def execute(request):
        run_id = request["run_id"]
        with lock:
            if run_id in finished:
                return finished[run_id]
            current = state["current"]
            if current is not None and current.id != run_id:
                return {"error": "busy", "running": current.id}
            if current is None:
                current = Run(request)
                state["current"] = current
                jobs.put(current)
        current.done.wait()
        return current.reply

    def interrupt(request):
        with lock:
            run = state["current"]
            if run is None or run.id != request["run_id"]:
                return {"run_id": request["run_id"], "running": False}
            run.interrupted = True
            if state["in_user_code"]:
                interrupt_main()
        run.done.wait(5)
        return {"run_id": run.id, "running": not run.done.is_set()}

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

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            try:
                request = json.loads(self.rfile.readline())
                action = request.get("action")
                if action == "execute":
                    reply = execute(request)
                elif action == "interrupt":
                    reply = interrupt(request)
                elif action == "complete":
                    reply = complete(request)
                else:
                    reply = {"error": "bad-request", "message": "unknown action %r" % action}
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
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stderr.write("sessionflow kernel runner: listening on %s\n" % SOCKET)
    sys.stderr.flush()

    while True:
        try:
            run = jobs.get()
        except KeyboardInterrupt:
            continue
        threading.Thread(target=watchdog, args=(run, max(0.001, run.request.get("timeout_ms", 60000) / 1000.0)), daemon=True).start()
        try:
            reply = execute_run(run)
        except BaseException as e:
            sys.stdin, sys.stdout, sys.stderr = real_streams
            # A KeyboardInterrupt at the very end of a run (after its own handler): still the run's.
            reply = {"run_id": run.id, "status": "finished", "exit_code": 1, "stdout": "", "stderr": "".join(traceback.format_exception_only(type(e), e)),
                     "truncated": False, "result": None, "result_repr": None, "timed_out": run.timed_out, "interrupted": run.interrupted}
        with lock:
            finished[run.id] = reply
            while len(finished) > 256:
                finished.popitem(last=False)
            state["current"] = None
            run.reply = reply
            run.done.set()

if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    elif sys.argv[1:] == ["call"]:
        call()
    else:
        sys.exit("usage: kernel_runner.py serve|call")
`;
