import { Client } from 'ssh2';
import { startSshServer, type SshServer } from '../helpers/sshd';

let sshd: SshServer;
beforeAll(async () => {
  sshd = await startSshServer();
});
afterAll(() => sshd.stop());

function run(command: string, privateKey = sshd.privateKey): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client
      .on('ready', () => {
        client.exec(command, (err, stream) => {
          if (err) return reject(err);
          let out = '';
          stream.on('data', (chunk: Buffer) => (out += chunk.toString())).on('close', () => {
            client.end();
            resolve(out);
          });
        });
      })
      .on('error', reject)
      .connect({ host: sshd.host, port: sshd.port, username: sshd.username, privateKey });
  });
}

describe('the test sshd', () => {
  it('runs a command for the holder of the user key', async () => {
    await expect(run('echo sessionflow-$((6*7))')).resolves.toBe('sessionflow-42\n');
  });

  it('refuses a key it has not authorised', async () => {
    const other = await startSshServer();
    try {
      await expect(run('true', other.privateKey)).rejects.toThrow(/authentication/i);
    } finally {
      await other.stop();
    }
  });
});
