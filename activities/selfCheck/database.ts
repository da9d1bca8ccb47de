import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { createSelfCheckStore } from './store';
import { timed } from './timing';

export function createDatabaseActivities({ pool }: { pool: Pool }) {
  const store = createSelfCheckStore(pool);
  return {
    /** Writes a row, reads it back and deletes it. */
    async roundTripProbeRow({ probeId }: { probeId: string }) {
      return timed(async () => {
        const nonce = randomUUID();
        await store.writeProbeRow(probeId, nonce);
        const readBack = await store.probeNonce(probeId);
        await store.deleteProbeRow(probeId);
        if (readBack !== nonce) throw new Error('the row read back is not the row written');
        return `PostgreSQL ${await store.serverVersion()}: row written, read back and deleted`;
      });
    },
  };
}
