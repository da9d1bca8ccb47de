import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const compose = parse(readFileSync(join(__dirname, '../../docker-compose.yml'), 'utf8')) as {
  services: Record<string, { depends_on?: Record<string, { condition: string }>; build?: string; image?: string; command?: unknown }>;
};

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
});
