import { readFileSync, statSync } from 'node:fs';
import { parse } from 'yaml';
import { join } from 'node:path';
import { demultiplex, sessionflowLabels } from '../../activities/shared/docker';
import { openInfra, type Infra } from '../helpers/infra';

/**
 * docker-compose.yml runs the worker and the api as the image's non-root user with the Docker
 * socket mounted and `group_add: [${DOCKER_GID}]`. This runs the same arrangement on the real
 * engine: a non-root container with the socket, with and without the socket's group.
 */
let infra: Infra;
beforeAll(() => {
  infra = openInfra();
});
afterAll(() => infra.close());

const socket = '/var/run/docker.sock';
// Python's standard library speaks HTTP over the socket: GET /_ping answers OK.
const ping = [
  'import socket, sys',
  's = socket.socket(socket.AF_UNIX)',
  'try:',
  `    s.connect("${socket}")`,
  'except OSError as e:',
  '    print("refused", e.errno); sys.exit(0)',
  's.sendall(b"GET /_ping HTTP/1.0\\r\\nHost: docker\\r\\n\\r\\n")',
  'print(s.recv(4096).decode().split("\\r\\n")[-1])',
].join('\n');

/** Runs the ping as uid/gid 1000 (the image's `node` user in compose) with the given extra groups. */
async function pingAs(groupAdd: string[]): Promise<string> {
  const container = await infra.docker.createContainer({
    Image: infra.config.BASE_IMAGE,
    Cmd: ['python3', '-c', ping],
    User: '1000:1000',
    Labels: sessionflowLabels(infra.config.SESSIONFLOW_INSTANCE, 'compose-socket-test'),
    // runc, as compose's worker runs: the point is the socket's permissions, not a sandbox's.
    HostConfig: { Binds: [`${socket}:${socket}`], GroupAdd: groupAdd, NetworkMode: 'none', Runtime: 'runc' },
  });
  try {
    await container.start();
    await container.wait();
    return demultiplex(await container.logs({ stdout: true, stderr: true })).trim();
  } finally {
    await container.remove({ force: true });
  }
}

describe('the Docker socket for compose\'s non-root worker', () => {
  it('is reachable with the socket\'s group added, and refused without it', async () => {
    const compose = parse(readFileSync(join(__dirname, '../../docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { group_add: string[] }> };
    expect(compose.services['worker-1']!.group_add[0]).toMatch(/^\$\{DOCKER_GID:\?/);
    const gid = String(statSync(socket).gid);
    // A socket open to everyone would prove nothing.
    expect(statSync(socket).mode & 0o007).toBe(0);
    expect(await pingAs([gid])).toBe('OK');
    expect(await pingAs([])).toBe('refused 13');
  });
});
