import { once } from 'node:events';
import { loadConfig } from '../platform/config';
import { createPool } from '../platform/database';
import { createDocker } from '../platform/docker';
import { createLogger } from '../platform/logger';
import { connectTemporal } from '../platform/temporal';
import { createApp } from './app';
import { attachTerminalBridge, type TerminalBridge } from './terminal/bridge';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL, 'api');
  const pool = createPool(config.DATABASE_URL, config.DATABASE_POOL_SIZE);
  const temporal = await connectTemporal(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE);
  const app = createApp({ config, temporal, pool, docker: createDocker(config.DOCKER_SOCKET), log });

  const server = app.listen(config.PORT, config.HOST);
  await once(server, 'listening');
  const terminalBridge = app.locals.terminalBridge as TerminalBridge;
  attachTerminalBridge(server, terminalBridge);
  log.info({ url: `http://${config.HOST}:${config.PORT}` }, 'api listening');

  const shutdown = (signal: string) => {
    log.info({ signal }, 'api stopping');
    void terminalBridge.close();
    server.close(() => {
      void Promise.allSettled([pool.end(), temporal.connection.close()]).then(() => process.exit(0));
    });
    // Keep-alive sockets would hold close() open; drop them after a grace period.
    setTimeout(() => server.closeAllConnections(), 5000).unref();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
