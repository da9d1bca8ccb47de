import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, configKeys, loadConfig } from '../../platform/config';

describe('loadConfig', () => {
  it('falls back to the embedded single-machine defaults', () => {
    expect(loadConfig({})).toMatchObject({ PORT: 8080, TEMPORAL_ADDRESS: '127.0.0.1:7233', TEMPORAL_TASK_QUEUE: 'sessionflow', REGISTRY_ADDRESS: '127.0.0.1:5000' });
  });

  it('coerces numbers and ignores empty values', () => {
    expect(loadConfig({ PORT: '9090', LOG_LEVEL: '' })).toMatchObject({ PORT: 9090, LOG_LEVEL: 'info' });
  });

  it('names every variable that is wrong', () => {
    expect(() => loadConfig({ PORT: 'eighty', DATABASE_URL: 'not a url' })).toThrow(ConfigError);
    expect(() => loadConfig({ PORT: 'eighty', DATABASE_URL: 'not a url' })).toThrow(/PORT.*DATABASE_URL|DATABASE_URL.*PORT/);
  });

  it('documents every variable in the README', () => {
    const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8');
    for (const key of configKeys) expect(readme).toContain(`\`${key}\``);
  });
});
