import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

type Port = string | number | { target: number; published?: string | number; host_ip?: string };
interface Service {
  depends_on?: Record<string, { condition: string }>;
  build?: string;
  image?: string;
  command?: unknown;
  ports?: Port[];
  volumes?: string[];
  user?: string;
  group_add?: (string | number)[];
}
const compose = parse(readFileSync(join(__dirname, '../../docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };
const dockerfile = readFileSync(join(__dirname, '../../Dockerfile'), 'utf8');

/** The host address a published port binds: a port without one is published on every interface. */
function hostAddress(port: Port): string {
  if (typeof port === 'object') return port.host_ip ?? '0.0.0.0';
  const parts = String(port).split(':');
  return parts.length === 3 ? parts[0]! : '0.0.0.0';
}

describe('docker-compose.yml', () => {
  it('names every part of the production stack', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['api', 'migrate', 'postgresql', 'registry', 'temporal', 'temporal-admin-tools', 'temporal-create-namespace', 'temporal-ui', 'worker'].sort(),
    );
  });

  it('only depends on services it defines, with a valid condition', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect({ name, dependency, defined: dependency in compose.services }).toEqual({ name, dependency, defined: true });
        expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(condition);
      }
    }
  });

  it('builds api and worker from the Dockerfile and runs their compiled entry points', () => {
    expect(compose.services.api).toMatchObject({ build: '.', command: ['node', 'dist/api/main.js'] });
    expect(compose.services.worker).toMatchObject({ build: '.', command: ['node', 'dist/workers/main.js'] });
  });

  it('uses the current Temporal images, not the deprecated auto-setup', () => {
    const images = Object.values(compose.services).map((s) => s.image ?? '');
    expect(images.some((image) => image.includes('auto-setup'))).toBe(false);
    expect(images).toEqual(expect.arrayContaining([expect.stringMatching(/^temporalio\/server:/), expect.stringMatching(/^temporalio\/admin-tools:/), expect.stringMatching(/^temporalio\/ui:/)]));
  });

  it('publishes every port on loopback only: Temporal\'s gRPC and Web UI have no authentication of their own', () => {
    const published = Object.entries(compose.services).flatMap(([name, service]) => (service.ports ?? []).map((port) => ({ name, port: String(typeof port === 'object' ? port.published : port), address: hostAddress(port) })));
    expect(published.map(({ name }) => name).sort()).toEqual(['api', 'registry', 'temporal', 'temporal-ui']);
    for (const entry of published) expect(entry).toEqual({ ...entry, address: '127.0.0.1' });
  });

  it('gives every service that mounts the Docker socket the socket\'s group, which the image\'s non-root user needs', () => {
    const users = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((match) => match[1]);
    expect(users.at(-1)).toBe('node');
    const mounting = Object.entries(compose.services).filter(([, service]) => (service.volumes ?? []).some((volume) => volume.startsWith('/var/run/docker.sock:')));
    expect(mounting.map(([name]) => name).sort()).toEqual(['api', 'worker']);
    for (const [name, service] of mounting) {
      // Running as root would also reach the socket; the user stays node and gains the group instead.
      expect({ name, user: service.user }).toEqual({ name, user: undefined });
      // Required: compose refuses to start without it rather than starting a worker that cannot reach Docker.
      expect({ name, group_add: service.group_add }).toEqual({ name, group_add: [expect.stringMatching(/^\$\{DOCKER_GID:\?.+\}$/)] });
    }
  });
});
