import { randomBytes } from 'node:crypto';
import type { Express } from 'express';
import request from 'supertest';
import WebSocket from 'ws';
import type { SshServer } from './sshd';

/** A fresh key for sealing host credentials in one test file. */
export const testCredentialsKey = () => randomBytes(32).toString('base64');

export const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

/** Registers the test sshd as a host through the admin api; returns its id. */
export async function registerSshHost(app: Express | string, adminKey: string, sshd: SshServer, name: string): Promise<string> {
  const res = await request(app).post('/api/v1/admin/hosts').set(bearer(adminKey))
    .send({ name, address: sshd.host, port: sshd.port, username: sshd.username, auth: { type: 'private_key', private_key: sshd.privateKey } })
    .expect(201);
  return res.body.id as string;
}

/**
 * A terminal WebSocket as a test drives it: everything the shell printed so far as text,
 * waits on a pattern, and how the socket closed.
 */
export class TerminalClient {
  output = '';
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly ready: Promise<void>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.output += data.toString('utf8');
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ready = new Promise((resolve, reject) => {
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary && (JSON.parse(data.toString()) as { type: string }).type === 'ready') resolve();
      });
      ws.once('close', (code, reason) => reject(new Error(`closed before ready: ${code} ${reason.toString()}`)));
    });
    // Tests await `closed` where they care; an early close must not crash as an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  static connect(baseUrl: string, sessionId: string, token: string, options: { origin?: string; cols?: number; rows?: number } = {}): Promise<TerminalClient> {
    const query = new URLSearchParams({ token, cols: String(options.cols ?? 80), rows: String(options.rows ?? 24) });
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/v1/terminals/${sessionId}/ws?${query}`, { origin: options.origin ?? baseUrl });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new TerminalClient(ws)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`refused with HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  type(text: string): void {
    this.ws.send(Buffer.from(text, 'utf8'), { binary: true });
  }

  control(message: object): void {
    this.ws.send(JSON.stringify(message));
  }

  /** Resolves once the output (after `from`) matches; fails with the output seen so far. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.output.slice(from).match(pattern);
      if (match) return match;
      if (Date.now() > deadline) throw new Error(`no ${pattern} in terminal output: ${JSON.stringify(this.output.slice(-500))}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** How a refused upgrade answered: its HTTP status. */
export function refusedStatus(baseUrl: string, path: string, origin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}${path}`, { origin });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => reject(new Error('the upgrade was accepted')));
    ws.once('error', () => undefined);
  });
}
