import { ApplicationFailure } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import { containerRuntimeResolver } from '../../activities/shared/containerRuntime';
import { kindLabel } from '../../activities/shared/docker';
import { createSelfCheckActivities, type SelfCheckActivityDeps } from '../../activities/selfCheck/probes';
import { openInfra, type Infra } from '../helpers/infra';

let infra: Infra;
beforeAll(() => {
  infra = openInfra();
});
afterAll(() => infra.close());

const probeDeps = (): SelfCheckActivityDeps => ({
  docker: infra.docker, pool: infra.pool, baseImage: infra.config.BASE_IMAGE, instance: infra.config.SESSIONFLOW_INSTANCE, registryAddress: infra.config.REGISTRY_ADDRESS,
  containerRuntime: containerRuntimeResolver(infra.docker, infra.config.CONTAINER_RUNTIME),
});

const probeContainers = async () =>
  infra.docker.listContainers({ all: true, filters: { label: [`${kindLabel}=self-check`] } });

describe('Docker probes', () => {
  it('reports the engine version', async () => {
    const { detail } = await infra.activities.pingDocker();
    expect(detail).toMatch(/^engine \d+\.\d+/);
  });

  it('runs python in a container from the base image and removes the container', async () => {
    const probeId = `it-${randomUUID()}`;
    const { detail, durationMs } = await infra.activities.runProbeContainer({ probeId });
    expect(detail).toMatch(/ran python 3\.\d+\.\d+ under runsc \(kernel 4\.4\.0\)$/);
    expect(durationMs).toBeGreaterThan(0);
    expect((await probeContainers()).filter((c) => c.Names.includes(`/sf-probe-${probeId}`))).toHaveLength(0);
  });

  it('replaces a container an earlier attempt left behind instead of failing on the name', async () => {
    const probeId = `it-${randomUUID()}`;
    await infra.docker.createContainer({ name: `sf-probe-${probeId}`, Image: infra.config.BASE_IMAGE, Cmd: ['true'], Labels: { [kindLabel]: 'self-check' } });
    await expect(infra.activities.runProbeContainer({ probeId })).resolves.toMatchObject({ detail: expect.stringContaining('ran python') });
    expect((await probeContainers()).filter((c) => c.Names.includes(`/sf-probe-${probeId}`))).toHaveLength(0);
  });

  it('fails with a non-retryable ImageNotFound when the image is missing', async () => {
    const activities = createSelfCheckActivities({ ...probeDeps(), baseImage: 'sessionflow/absent:never' });
    const failure = await activities.runProbeContainer({ probeId: `it-${randomUUID()}` }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'ImageNotFound', nonRetryable: true });
  });
});

describe('PostgreSQL probe', () => {
  it('writes, reads back and deletes its row', async () => {
    const probeId = `it-${randomUUID()}`;
    const { detail } = await infra.activities.roundTripProbeRow({ probeId });
    expect(detail).toMatch(/^PostgreSQL \d+/);
    const { rowCount } = await infra.pool.query('SELECT 1 FROM self_check_probes WHERE id = $1', [probeId]);
    expect(rowCount).toBe(0);
  });
});

describe('registry probe', () => {
  it('pushes a tiny image, then leaves it neither in the registry nor in Docker', async () => {
    const probeId = `it-${randomUUID()}`;
    const { detail } = await infra.activities.pushAndDeleteProbeImage({ probeId });
    expect(detail).toContain(`sessionflow/self-check:${probeId}`);
    const manifest = await fetch(`http://${infra.config.REGISTRY_ADDRESS}/v2/sessionflow/self-check/manifests/${probeId}`, {
      method: 'HEAD', headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(manifest.status).toBe(404);
    const local = await infra.docker.listImages({ filters: { reference: [`*/sessionflow/self-check:${probeId}`] } });
    expect(local).toHaveLength(0);
  });

  it('fails, leaving no local image, when no registry answers', async () => {
    const probeId = `it-${randomUUID()}`;
    const activities = createSelfCheckActivities({ ...probeDeps(), registryAddress: '127.0.0.1:9' });
    await expect(activities.pushAndDeleteProbeImage({ probeId })).rejects.toThrow();
    const local = await infra.docker.listImages({ filters: { reference: [`*/sessionflow/self-check:${probeId}`] } });
    expect(local).toHaveLength(0);
  });
});
