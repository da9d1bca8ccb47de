import type { Pool } from 'pg';
import type { HostKeyPin, HostKeySource, PresentedHostKey } from './hostKeys';

/** The tables whose rows are SSH endpoints; both carry the same four host_key_* columns. */
type HostKeyTable = 'terminal_hosts' | 'pxe_boot_servers';

/** The host_key_* columns as a row has them. */
export interface HostKeyColumns {
  host_key_fingerprint: string | null;
  host_key_algorithm: string | null;
  host_key_source: HostKeySource | null;
  host_key_pinned_at: Date | null;
}

export const hostKeyColumnList = 'host_key_fingerprint, host_key_algorithm, host_key_source, host_key_pinned_at';

/** A row's pin, or null when its host key is not pinned yet. */
export function pinOf(row: HostKeyColumns): HostKeyPin | null {
  return row.host_key_fingerprint ? { fingerprint: row.host_key_fingerprint, algorithm: row.host_key_algorithm } : null;
}

/** The pin as the api shows it: what, which type, who pinned it and when. */
export function presentHostKey(row: HostKeyColumns) {
  return row.host_key_fingerprint
    ? { fingerprint: row.host_key_fingerprint, algorithm: row.host_key_algorithm, source: row.host_key_source, pinned_at: row.host_key_pinned_at?.toISOString() ?? null }
    : null;
}

/** Pins what an admin gave (or a registration probe read), replacing any pin; false when there is no such row. */
export async function setHostKey(pool: Pool, table: HostKeyTable, id: string, pin: HostKeyPin, source: HostKeySource): Promise<boolean> {
  const { rowCount } = await pool.query(
    `UPDATE ${table} SET host_key_fingerprint = $2, host_key_algorithm = $3, host_key_source = $4, host_key_pinned_at = now() WHERE id = $1`,
    [id, pin.fingerprint, pin.algorithm, source],
  );
  return Boolean(rowCount);
}

/**
 * Trust on first use, race-free: records the presented key only while the row has no pin, and
 * answers the pin in place afterwards — ours, or the one a concurrent first connection won with
 * (which the caller then compares against what it was shown).
 */
export async function pinHostKeyOnFirstUse(pool: Pool, table: HostKeyTable, id: string, presented: PresentedHostKey): Promise<HostKeyPin> {
  const { rows: [row] } = await pool.query<{ fingerprint: string; algorithm: string | null }>(
    `WITH pinned AS (
       UPDATE ${table} SET host_key_fingerprint = $2, host_key_algorithm = $3, host_key_source = 'first_use', host_key_pinned_at = now()
        WHERE id = $1 AND host_key_fingerprint IS NULL
        RETURNING host_key_fingerprint AS fingerprint, host_key_algorithm AS algorithm)
     SELECT fingerprint, algorithm FROM pinned
     UNION ALL
     SELECT host_key_fingerprint, host_key_algorithm FROM ${table} WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM pinned)`,
    [id, presented.fingerprint, presented.algorithm],
  );
  if (!row?.fingerprint) throw new Error(`no ${table} row ${id} to pin a host key on`);
  return { fingerprint: row.fingerprint, algorithm: row.algorithm };
}
