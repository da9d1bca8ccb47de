import { parseArgs } from 'node:util';
import { createUserKey, type Role } from '../api/platform/auth';
import { loadConfig } from '../platform/config';
import { createPool } from '../platform/database';

/**
 * Creates a user (unless it exists) and prints a new API key for it. The key is shown only here:
 * the database keeps its SHA-256. A key never changes a role: `--role` names the role of a new
 * user, and for an existing one must match the role it has (or be left out).
 *   npm run key:create -- --name alice [--role admin] [--label laptop] [--expires-in-days 90]
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { name: { type: 'string' }, role: { type: 'string' }, label: { type: 'string', default: 'cli' }, 'expires-in-days': { type: 'string' } } });
  if (!values.name) throw new Error('--name is required');
  if (values.role !== undefined && values.role !== 'user' && values.role !== 'admin') throw new Error('--role must be user or admin');
  const days = values['expires-in-days'];
  if (days !== undefined && !/^[1-9]\d{0,4}$/.test(days)) throw new Error('--expires-in-days must be a whole number of days, 1 or more');
  const expiresAt = days === undefined ? undefined : new Date(Date.now() + Number(days) * 86_400_000);
  const config = loadConfig();
  const pool = createPool(config.DATABASE_URL, 1);
  try {
    const { key } = await createUserKey(pool, values.name, values.role as Role | undefined, values.label, expiresAt);
    process.stdout.write(`${key}\n`);
  } finally {
    await pool.end();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
