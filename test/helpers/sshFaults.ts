import { createServer, connect, type Server, type Socket } from 'node:net';
import { Server as SshServer, utils } from 'ssh2';

/**
 * Faults on the way to an SSH host, for the tests of host-key pinning and of the terminal
 * bridge's bounds: an impostor (a real SSH server, ssh2's, with a key of its own) that records
 * every credential offered to it, and a gate that holds new TCP connections to a real sshd.
 */

export interface SshImpostor {
  port: number;
  /** Every authentication attempt: the method, and the password when one was offered. */
  attempts: { method: string; username: string; password?: string }[];
  /** Connections that reached it at all (a handshake began). */
  connections(): number;
  stop(): Promise<void>;
}

export async function startSshImpostor(): Promise<SshImpostor> {
  const hostKey = utils.generateKeyPairSync('ed25519');
  const attempts: SshImpostor['attempts'] = [];
  let connections = 0;
  const server = new SshServer({ hostKeys: [hostKey.private] }, (client) => {
    connections++;
    client.on('authentication', (ctx) => {
      attempts.push({ method: ctx.method, username: ctx.username, ...(ctx.method === 'password' ? { password: ctx.password } : {}) });
      ctx.reject();
    });
    client.on('error', () => undefined);
  });
  const port = await listen(server);
  return { port, attempts, connections: () => connections, stop: () => close(server) };
}

export interface TcpGate {
  port: number;
  /** Connections made from now on wait (held open, nothing forwarded) until `open()`. */
  close(): void;
  /** Forwards every waiting and every new connection. */
  open(): void;
  stop(): Promise<void>;
}

/** A loopback port in front of `targetPort` that can hold connections, as a slow network would. */
export async function startTcpGate(targetPort: number): Promise<TcpGate> {
  let opened = true;
  const waiting: Socket[] = [];
  const sockets = new Set<Socket>();
  const forward = (socket: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    socket.pipe(upstream).pipe(socket);
    const done = () => {
      socket.destroy();
      upstream.destroy();
    };
    socket.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
  };
  const server = createServer((socket) => {
    sockets.add(socket);
    if (opened) forward(socket);
    else waiting.push(socket);
  });
  const port = await listen(server);
  return {
    port,
    close: () => (opened = false),
    open() {
      opened = true;
      for (const socket of waiting.splice(0)) forward(socket);
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await close(server);
    },
  };
}

function listen(server: Server | SshServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

function close(server: Server | SshServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
