import type { Pool } from 'pg';
import { utils } from 'ssh2';
import type { Sealer } from '../../platform/sealer';
import { createSecretStore } from './secretStore';

/** A cluster's SSH key pair as sealed in compute_secrets (OpenSSH formats). */
export interface ClusterKeyPair {
  privateKey: string;
  publicKey: string;
}

/**
 * The key pair the kernels of one cluster share for MPI-style launch (`ssh sub1 …`). It runs on
 * the main queue: PostgreSQL only, so any worker may make it, and the workflow carries just its
 * id — the private key is opened only by the node activity that writes it into a kernel.
 */
export function createClusterKeyActivities({ pool, sealer }: { pool: Pool; sealer: Sealer }) {
  const secrets = createSecretStore(pool, sealer);
  return {
    /** Idempotent: the row's id is the session's, and an existing row is kept (a retry does not change the key kernels may already hold). */
    async ensureClusterKeyPair({ sessionId, ownerId }: { sessionId: string; ownerId: string }): Promise<{ keyId: string }> {
      await secrets.insertIfMissing(sessionId, ownerId, () => {
        const pair = utils.generateKeyPairSync('ed25519', { comment: `sessionflow-cluster-${sessionId.slice(0, 8)}` });
        return JSON.stringify({ privateKey: pair.private, publicKey: pair.public } satisfies ClusterKeyPair);
      });
      return { keyId: sessionId };
    },
  };
}

export type ClusterKeyActivities = ReturnType<typeof createClusterKeyActivities>;
