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
  environment?: Record<string, string>;
  entrypoint?: string[];
}
const read = (path: string) => readFileSync(join(__dirname, '../..', path), 'utf8');
// Merge keys (`<<: *worker`) are how the file shares one service's definition among its copies.
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
const dockerfile = read('Dockerfile');

/** The host address a published port binds: a port without one is published on every interface. */
function hostAddress(port: Port): string {
  if (typeof port === 'object') return port.host_ip ?? '0.0.0.0';
  const parts = String(port).split(':');
  return parts.length === 3 ? parts[0]! : '0.0.0.0';
}

describe('docker-compose.yml', () => {
  it('names every part of the production stack', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['api-1', 'api-2', 'migrate', 'postgresql', 'proxy', 'registry', 'temporal', 'temporal-admin-tools', 'temporal-create-namespace', 'temporal-ui', 'worker-1', 'worker-2'].sort(),
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
    for (const name of ['api-1', 'api-2']) expect(compose.services[name]).toMatchObject({ build: '.', command: ['node', 'dist/api/main.js'] });
    for (const name of ['worker-1', 'worker-2']) expect(compose.services[name]).toMatchObject({ build: '.', command: ['node', 'dist/workers/main.js'] });
  });

  it('uses the current Temporal images, not the deprecated auto-setup', () => {
    const images = Object.values(compose.services).map((s) => s.image ?? '');
    expect(images.some((image) => image.includes('auto-setup'))).toBe(false);
    expect(images).toEqual(expect.arrayContaining([expect.stringMatching(/^temporalio\/server:/), expect.stringMatching(/^temporalio\/admin-tools:/), expect.stringMatching(/^temporalio\/ui:/)]));
  });

  it('publishes every port on loopback only: Temporal\'s gRPC and Web UI have no authentication of their own', () => {
    const published = Object.entries(compose.services).flatMap(([name, service]) => (service.ports ?? []).map((port) => ({ name, port: String(typeof port === 'object' ? port.published : port), address: hostAddress(port) })));
    expect(published.map(({ name }) => name).sort()).toEqual(['proxy', 'registry', 'temporal', 'temporal-ui']);
    for (const entry of published) expect(entry).toEqual({ ...entry, address: '127.0.0.1' });
  });

  it('gives every service that mounts the Docker socket the socket\'s group, which the image\'s non-root user needs', () => {
    const users = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((match) => match[1]);
    expect(users.at(-1)).toBe('node');
    const mounting = Object.entries(compose.services).filter(([, service]) => (service.volumes ?? []).some((volume) => volume.startsWith('/var/run/docker.sock:')));
    expect(mounting.map(([name]) => name).sort()).toEqual(['api-1', 'api-2', 'worker-1', 'worker-2']);
    for (const [name, service] of mounting) {
      // Running as root would also reach the socket; the user stays node and gains the group instead.
      expect({ name, user: service.user }).toEqual({ name, user: undefined });
      // Required: compose refuses to start without it rather than starting a worker that cannot reach Docker.
      expect({ name, group_add: service.group_add }).toEqual({ name, group_add: [expect.stringMatching(/^\$\{DOCKER_GID:\?.+\}$/)] });
    }
  });
});

/**
 * `scripts/up.sh --cluster` runs the compose topology on a machine without images: the two must
 * not drift apart. What each runs, with which files, is read from both sides.
 */
describe('docker-compose.yml and cluster mode stay in step', () => {
  const lib = read('scripts/lib.sh');
  const up = read('scripts/up.sh');
  const startCluster = read('scripts/start-temporal-cluster.sh');
  const startProxy = read('scripts/start-proxy.sh');
  const pinned = (name: string) => new RegExp(`^${name}="v([^"]+)"`, 'm').exec(lib)?.[1];
  const mountOf = (service: Service, source: string) => (service.volumes ?? []).find((volume) => volume.startsWith(`${source}:`))?.split(':')[1];
  const defaultCount = (flag: string) => Number(new RegExp(`\\b${flag}=(\\d+)`).exec(up)?.[1]);

  it('runs the Temporal server and Web UI versions the script builds', () => {
    expect(compose.services.temporal!.image).toBe(`temporalio/server:${pinned('TEMPORAL_SERVER_VERSION')}`);
    expect(compose.services['temporal-admin-tools']!.image).toBe(`temporalio/admin-tools:${pinned('TEMPORAL_SERVER_VERSION')}`);
    expect(compose.services['temporal-ui']!.image).toBe(`temporalio/ui:${pinned('TEMPORAL_UI_SERVER_VERSION')}`);
  });

  it('starts the Temporal server from deploy/temporal with the sessionflow environment, as the script does', () => {
    const temporal = compose.services.temporal!;
    const configDir = mountOf(temporal, './deploy/temporal');
    expect(configDir).toBe('/etc/sessionflow/temporal');
    expect(String(temporal.command)).toContain(`--root / --config ${configDir!.slice(1)} --env sessionflow --allow-no-auth start`);
    expect(startCluster).toContain('--root "$SF_ROOT" --config deploy/temporal --env sessionflow --allow-no-auth start');
    expect(temporal.environment!.TEMPORAL_DYNAMIC_CONFIG).toBe(`${configDir}/dynamicconfig.yaml`);
    expect(startCluster).toContain('TEMPORAL_DYNAMIC_CONFIG="$SF_ROOT/deploy/temporal/dynamicconfig.yaml"');
  });

  it('sets only variables the server configuration reads', () => {
    const template = read('deploy/temporal/sessionflow.yaml');
    const read_ = new Set([...template.matchAll(/env "([A-Z_]+)"/g)].map((match) => match[1]));
    const set = [...Object.keys(compose.services.temporal!.environment!), ...[...startCluster.matchAll(/\b(TEMPORAL_[A-Z_]+)=/g)].map((match) => match[1]!)];
    const serverVariables = set.filter((name) => name !== 'TEMPORAL_GRPC_ADDRESS' && name !== 'TEMPORAL_UI_PORT');
    for (const name of serverVariables) expect({ name, read: read_.has(name) }).toEqual({ name, read: true });
  });

  it('starts the Web UI from deploy/temporal-ui, as the script does', () => {
    const ui = compose.services['temporal-ui']!;
    const configDir = mountOf(ui, './deploy/temporal-ui');
    expect(ui.entrypoint).toEqual(['./ui-server', '--root', '/', '--config', configDir!.slice(1), '--env', 'sessionflow', 'start']);
    expect(startCluster).toContain('--root "$SF_ROOT" --config deploy/temporal-ui --env sessionflow start');
    const template = read('deploy/temporal-ui/sessionflow.yaml');
    for (const name of Object.keys(ui.environment!)) expect({ name, read: template.includes(`env "${name}"`) }).toEqual({ name, read: true });
  });

  it('puts nginx in front of the api processes with the one template, filled with the same variables', () => {
    const proxy = compose.services.proxy!;
    expect(proxy.image).toMatch(/^nginx:/);
    expect(mountOf(proxy, './deploy/nginx/sessionflow.conf.template')).toBe('/etc/nginx/templates/sessionflow.conf.template');
    expect(startProxy).toContain('deploy/nginx/sessionflow.conf.template');
    const variables = [...read('deploy/nginx/sessionflow.conf.template').matchAll(/\$\{([A-Z_]+)\}/g)].map((match) => match[1]).sort();
    expect([...new Set(variables)]).toEqual(Object.keys(proxy.environment!).sort());
    for (const name of variables) expect(startProxy).toContain(`\${${name}}`);
    const apis = Object.keys(compose.services).filter((name) => name.startsWith('api-'));
    for (const name of apis) expect(proxy.environment!.SESSIONFLOW_API_SERVERS).toContain(`server ${name}:${compose.services[name]!.environment!.PORT} `);
  });

  it('runs api and worker with jemalloc, in the image as on the machine', () => {
    expect(dockerfile).toMatch(/^ENV .*LD_PRELOAD=\S*libjemalloc\.so\.2/m);
    expect(dockerfile).toContain('libjemalloc2');
    const starts = up.split('\n').filter((line) => /start_daemon "?[\w$-]*(api|worker)[\w$-]*"? node /.test(line));
    expect(starts.length).toBe(4);
    for (const line of starts) expect(line).toContain('LD_PRELOAD="$JEMALLOC"');
  });

  it('runs as many workers and api processes as cluster mode does by default, one worker being the compute node', () => {
    const names = Object.keys(compose.services);
    expect(names.filter((name) => name.startsWith('worker-'))).toHaveLength(defaultCount('workers'));
    expect(names.filter((name) => name.startsWith('api-'))).toHaveLength(defaultCount('apis'));
    expect(up).toContain('start_daemon "cluster-worker-$i" node dist/workers/main.js');
    expect(up).toContain('start_daemon "cluster-api-$i" node dist/api/main.js');
    expect(up).toMatch(/COMPUTE_NODE_ENABLED="\$\(\[ "\$i" = 1 \]/);
    const nodes = names.filter((name) => name.startsWith('worker-')).map((name) => [name, compose.services[name]!.environment!.COMPUTE_NODE_ENABLED]);
    expect(nodes).toEqual([['worker-1', 'true'], ['worker-2', 'false']]);
  });
});
