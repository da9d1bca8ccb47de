import type Docker from 'dockerode';
import { createServer, type Server, type Socket } from 'node:net';
import { Transform, type Duplex, type TransformCallback } from 'node:stream';
import { serviceHost } from '../../domain/compute/services';
import { demultiplex, statusOf } from '../shared/docker';
import { kernelUser } from './kernelInit';

/**
 * A tiny relay run in the kernel for each proxied connection (`relay HOST PORT`): it connects to
 * the port on the kernel's own loopback (kernels have no network, but gVisor's netstack gives
 * them a loopback) and copies stdin to the socket and the socket to stdout. The client's
 * half-close reaches the app as a shutdown of the socket's write side; the app's close ends the
 * relay, which ends the exec and so the client's connection. `probe HOST PORT…` prints the ports
 * something listens on. Standard library only: it runs as `python3 -I -S`.
 */
export const relaySource = `
import os, socket, sys, threading
mode, host, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]
if mode == 'probe':
    found = []
    for port in ports:
        try:
            socket.create_connection((host, port), timeout=2).close()
            found.append(str(port))
        except OSError:
            pass
    print(' '.join(found))
    sys.exit(0)
try:
    conn = socket.create_connection((host, ports[0]), timeout=10)
except OSError as err:
    sys.stderr.write('sessionflow relay: %s\\n' % err)
    sys.exit(3)
conn.settimeout(None)
def upstream():
    try:
        while True:
            data = os.read(0, 65536)
            if not data:
                break
            conn.sendall(data)
    except OSError:
        pass
    try:
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
threading.Thread(target=upstream, daemon=True).start()
try:
    while True:
        data = conn.recv(65536)
        if not data:
            break
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]
except OSError:
    pass
os._exit(0)
`;

const relayCommand = (mode: 'relay' | 'probe', ports: number[]) => ['python3', '-I', '-S', '-c', relaySource, mode, '127.0.0.1', ...ports.map(String)];
const asWork = `${kernelUser.uid}:${kernelUser.gid}`;

/** A service's listener: which key (`<session id>/<name>`), on which host port, relaying where. */
export interface ServiceTarget {
  key: string;
  /** 0: any free port (the answer says which). */
  hostPort: number;
  containerId: string;
  containerPort: number;
}

interface Listener extends ServiceTarget {
  server: Server;
  sockets: Set<Socket>;
}

export const serviceKey = (sessionId: string, name: string) => `${sessionId}/${name}`;

/** The host port is held by something else on the node. */
export class HostPortTaken extends Error {
  override name = 'HostPortTaken';
}

/**
 * The TCP listeners of one node's services, owned by its worker process: each listens on the
 * node's loopback and relays every connection it accepts into a kernel through `docker exec` of
 * the relay, as `work`. Listeners live as long as the process or until closed; the rows in
 * compute_services let a worker that starts again open them anew (services.ts).
 */
export class ServiceProxy {
  private readonly listeners = new Map<string, Listener>();
  /** One change at a time per key: a retried activity may race its first attempt. */
  private readonly changing = new Map<string, Promise<unknown>>();

  constructor(private readonly docker: Docker) {}

  /** The host port of the key's listener, if it has one. */
  portOf(key: string): number | undefined {
    return this.listeners.get(key)?.hostPort;
  }

  keys(): string[] {
    return [...this.listeners.keys()];
  }

  /**
   * Listens for the target (or keeps the listener it has, when it relays to the same place) and
   * answers the host port. HostPortTaken when the port is not free on the node.
   */
  open(target: ServiceTarget): Promise<number> {
    return this.serially(target.key, async () => {
      const current = this.listeners.get(target.key);
      if (current && (target.hostPort === 0 || current.hostPort === target.hostPort) && current.containerId === target.containerId && current.containerPort === target.containerPort) {
        return current.hostPort;
      }
      if (current) await this.stop(current);
      const listener: Listener = { ...target, server: createServer({ allowHalfOpen: true, pauseOnConnect: true }), sockets: new Set() };
      listener.server.on('connection', (socket) => void this.relay(listener, socket));
      await new Promise<void>((resolve, reject) => {
        listener.server.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? new HostPortTaken(`port ${target.hostPort} is in use on this node`) : err));
        listener.server.listen(target.hostPort, serviceHost, () => resolve());
      });
      listener.hostPort = (listener.server.address() as { port: number }).port;
      this.listeners.set(target.key, listener);
      return listener.hostPort;
    });
  }

  /** Stops listening and ends the connections going on: the URL refuses from now on. False when there was no listener. */
  close(key: string): Promise<boolean> {
    return this.serially(key, async () => {
      const listener = this.listeners.get(key);
      if (!listener) return false;
      await this.stop(listener);
      return true;
    });
  }

  /** Every listener of a session (its end on this node). */
  async closeSession(sessionId: string): Promise<number> {
    const keys = this.keys().filter((key) => key.startsWith(`${sessionId}/`));
    await Promise.all(keys.map((key) => this.close(key)));
    return keys.length;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.keys().map((key) => this.close(key)));
  }

  /** Which of the ports something listens on in the kernel's loopback (one exec for all). */
  async listening(containerId: string, ports: number[]): Promise<number[]> {
    const { stdout, exitCode } = await execInKernel(this.docker, containerId, relayCommand('probe', ports));
    if (exitCode !== 0) throw new Error(`the port probe in kernel ${containerId} exited with ${exitCode}`);
    return stdout.trim().split(/\s+/).filter(Boolean).map(Number);
  }

  private async stop(listener: Listener): Promise<void> {
    this.listeners.delete(listener.key);
    const closed = new Promise<void>((resolve) => listener.server.close(() => resolve()));
    for (const socket of listener.sockets) socket.destroy();
    await closed;
  }

  /** One client connection ↔ one exec of the relay, with backpressure both ways. */
  private async relay(listener: Listener, socket: Socket): Promise<void> {
    listener.sockets.add(socket);
    socket.on('close', () => listener.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let stream: Duplex;
    try {
      const exec = await this.docker.getContainer(listener.containerId).exec({
        Cmd: relayCommand('relay', [listener.containerPort]), User: asWork, AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false,
      });
      stream = (await exec.start({ hijack: true, stdin: true })) as Duplex;
    } catch {
      // The kernel is gone or stopped: the client sees its connection end.
      socket.destroy();
      return;
    }
    if (socket.destroyed) {
      stream.destroy();
      return;
    }
    stream.on('error', () => socket.destroy());
    socket.on('close', () => stream.destroy());
    // The app's side ends (the relay exits): the client gets the rest, then the end.
    stream.pipe(new StdoutFrames()).pipe(socket);
    // The client's side ends: the relay's stdin ends, and it shuts the app's socket for writing.
    socket.pipe(stream);
  }

  private serially<T>(key: string, change: () => Promise<T>): Promise<T> {
    const before = this.changing.get(key) ?? Promise.resolve();
    const next = before.then(change, change);
    const settled = next.catch(() => undefined);
    this.changing.set(key, settled);
    void settled.then(() => {
      if (this.changing.get(key) === settled) this.changing.delete(key);
    });
    return next;
  }
}

/**
 * Docker's multiplexed exec output (8-byte frame headers) to the bytes of stdout only, as a
 * stream: the relay's stderr carries only its own complaints.
 */
class StdoutFrames extends Transform {
  private pending: Buffer = Buffer.alloc(0);
  private remaining = 0;
  private stream = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (data.length > 0) {
      if (this.remaining === 0) {
        if (data.length < 8) {
          this.pending = data;
          break;
        }
        this.stream = data[0]!;
        this.remaining = data.readUInt32BE(4);
        data = data.subarray(8);
        continue;
      }
      const part = data.subarray(0, this.remaining);
      this.remaining -= part.length;
      data = data.subarray(part.length);
      if (this.stream === 1) this.push(part);
    }
    done();
  }
}

/**
 * A port free on the node's loopback now: `preferred` when it is (and not in `avoid`), else one
 * the system picks. Only a hint: the listener may still find it taken (then it moves).
 */
export async function freeHostPort(preferred: number, avoid: Set<number>): Promise<number> {
  const tryPort = (port: number) => new Promise<number | undefined>((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(undefined));
    probe.listen(port, serviceHost, () => {
      const { port: bound } = probe.address() as { port: number };
      probe.close(() => resolve(bound));
    });
  });
  if (preferred !== 0 && !avoid.has(preferred)) {
    const port = await tryPort(preferred);
    if (port !== undefined) return port;
  }
  for (;;) {
    const port = await tryPort(0);
    if (port !== undefined && !avoid.has(port)) return port;
  }
}

/**
 * A command in the kernel as `work`, its output and exit code; `stdin` is fed to it (then EOF).
 * A kernel gone or stopped is KernelGone.
 */
export async function execInKernel(docker: Docker, containerId: string, command: string[], { stdin, maxOutputBytes = 64 * 1024 }: { stdin?: Buffer; maxOutputBytes?: number } = {}): Promise<{ stdout: string; exitCode: number | null }> {
  let exec: Docker.Exec;
  try {
    exec = await docker.getContainer(containerId).exec({ Cmd: command, User: asWork, AttachStdin: stdin !== undefined, AttachStdout: true, AttachStderr: true, Tty: false });
  } catch (err) {
    if (statusOf(err) === 404 || statusOf(err) === 409) throw new KernelGone(`the kernel's container ${containerId} is gone or stopped`);
    throw err;
  }
  const stream = (await exec.start({ hijack: true, stdin: stdin !== undefined })) as Duplex;
  const chunks: Buffer[] = [];
  let size = 0;
  stream.on('data', (chunk: Buffer) => {
    if (size < maxOutputBytes) chunks.push(chunk);
    size += chunk.length;
  });
  const ended = new Promise((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  if (stdin !== undefined) stream.end(stdin);
  await ended;
  return { stdout: demultiplex(Buffer.concat(chunks)), exitCode: (await exec.inspect()).ExitCode };
}

export class KernelGone extends Error {
  override name = 'KernelGone';
}
