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

  it('refuses the local executor in production unless explicitly allowed', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', USE_LOCAL_EXECUTOR: 'true' })).toThrow(/USE_LOCAL_EXECUTOR: .*ALLOW_LOCAL_EXECUTOR_IN_PRODUCTION/);
    expect(loadConfig({ NODE_ENV: 'production', USE_LOCAL_EXECUTOR: 'true', ALLOW_LOCAL_EXECUTOR_IN_PRODUCTION: 'true' }).USE_LOCAL_EXECUTOR).toBe(true);
    expect(loadConfig({ NODE_ENV: 'development', USE_LOCAL_EXECUTOR: 'true' }).USE_LOCAL_EXECUTOR).toBe(true);
  });

  it('refuses chat sandbox tmpfs areas that would not fit in the sandbox\'s memory', () => {
    // Writes to a tmpfs are charged to the container's memory: past it, a full disk would be an OOM kill instead of ENOSPC.
    expect(() => loadConfig({ SANDBOX_MEMORY_LIMIT_MB: '64', SANDBOX_WORKSPACE_BYTES: String(48 * 1024 * 1024) })).toThrow(/SANDBOX_WORKSPACE_BYTES: .*SANDBOX_MEMORY_LIMIT_MB/);
    expect(loadConfig({ SANDBOX_MEMORY_LIMIT_MB: '64', SANDBOX_WORKSPACE_BYTES: String(16 * 1024 * 1024), SANDBOX_TMP_BYTES: String(8 * 1024 * 1024) })).toMatchObject({ SANDBOX_MEMORY_LIMIT_MB: 64 });
  });

  it('keeps the heartbeat interval at most half the idle timeout, so a heartbeating session never goes idle', () => {
    expect(loadConfig({}).TERMINAL_HEARTBEAT_MIN_INTERVAL_MS).toBe(1000);
    expect(() => loadConfig({ TERMINAL_IDLE_TIMEOUT_SECONDS: '10', TERMINAL_HEARTBEAT_MIN_INTERVAL_MS: '6000' })).toThrow(/TERMINAL_HEARTBEAT_MIN_INTERVAL_MS: at most half/);
    expect(loadConfig({ TERMINAL_IDLE_TIMEOUT_SECONDS: '10', TERMINAL_HEARTBEAT_MIN_INTERVAL_MS: '5000' }).TERMINAL_HEARTBEAT_MIN_INTERVAL_MS).toBe(5000);
  });

  it('trusts SSH host keys on first use unless told not to', () => {
    expect(loadConfig({}).SSH_TRUST_ON_FIRST_USE).toBe(true);
    expect(loadConfig({ SSH_TRUST_ON_FIRST_USE: 'false' }).SSH_TRUST_ON_FIRST_USE).toBe(false);
  });

  it('reads a compute node\'s declared memory as bytes or with a binary suffix, and leaves unset capacity to the host', () => {
    expect(loadConfig({ COMPUTE_NODE_MEMORY: '16G' }).COMPUTE_NODE_MEMORY).toBe(16 * 2 ** 30);
    expect(loadConfig({ COMPUTE_NODE_MEMORY: '1.5m' }).COMPUTE_NODE_MEMORY).toBe(1.5 * 2 ** 20);
    expect(loadConfig({ COMPUTE_NODE_MEMORY: '4096' }).COMPUTE_NODE_MEMORY).toBe(4096);
    expect(loadConfig({ COMPUTE_NODE_MEMORY: '16GB' }).COMPUTE_NODE_MEMORY).toBe(16 * 2 ** 30);
    expect(() => loadConfig({ COMPUTE_NODE_MEMORY: 'lots' })).toThrow(/COMPUTE_NODE_MEMORY/);
    const defaults = loadConfig({});
    expect(defaults).toMatchObject({ COMPUTE_NODE_ENABLED: true, COMPUTE_NODE_NAME: 'local', COMPUTE_NODE_GPU: 0 });
    expect([defaults.COMPUTE_NODE_CPU, defaults.COMPUTE_NODE_MEMORY]).toEqual([undefined, undefined]);
  });

  describe('docs/configuration.md', () => {
    const page = readFileSync(join(__dirname, '../../docs/configuration.md'), 'utf8');
    // Rows of the variables table: | `NAME` | default | meaning |
    const rows = [...page.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| (.*?) \| .* \|$/gm)].map(([, key = '', defaultCell = '']) => ({ key, defaultCell }));

    it('has one row for every variable of the schema, and no other', () => {
      expect(rows.map((row) => row.key).sort()).toEqual([...configKeys].sort());
    });

    it('states the schema\'s default where it writes one as a plain value', () => {
      const defaults = loadConfig({}) as Record<string, unknown>;
      const plain = rows.filter((row) => /^`[^`]*`$/.test(row.defaultCell));
      expect(plain.length).toBeGreaterThan(configKeys.length / 2);
      for (const { key, defaultCell } of plain) expect([key, defaultCell.slice(1, -1)]).toEqual([key, String(defaults[key])]);
    });
  });
});
