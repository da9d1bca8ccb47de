import { parseArgs } from 'node:util';
import { createUserKey, type Role } from '../api/platform/auth';
import { loadConfig } from '../platform/config';
import { createPool } from '../platform/database';

/**
 * Creates (or updates) a user and prints a new API key for it. The key is shown only here:
 * the database keeps its SHA-256.
 *   npm run key:create -- --name alice [--role admin] [--label laptop]
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { name: { type: 'string' }, role: { type: 'string', default: 'user' }, label: { type: 'string', default: 'cli' } } });
  if (!values.name) throw new Error('--name is required');
  if (values.role !== 'user' && values.role !== 'admin') throw new Error('--role must be user or admin');
  const config = loadConfig();
  const pool = createPool(config.DATABASE_URL, 1);
  try {
    const { key } = await createUserKey(pool, values.name, values.role as Role, values.label);
    process.stdout.write(`${key}\n`);
  } finally {
    await pool.end();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
