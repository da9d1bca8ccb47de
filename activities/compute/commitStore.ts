import type { Pool } from 'pg';
import type { CommitKind, CommitProgress, CommitStatus } from '../../domain/compute/imageCommit';
import { domainFailure } from '../../domain/shared/errors';
import { inTransaction, lockUntilCommit } from '../../platform/database';

export interface CommitRow {
  id: string;
  session_id: string;
  owner_id: string;
  kind: CommitKind;
  image_name: string | null;
  registry: string | null;
  status: CommitStatus;
  progress: CommitProgress | Record<string, never>;
  error: { code: string; message: string } | null;
  created_at: Date;
  updated_at: Date;
}

export interface CommitStart {
  commitId: string;
  sessionId: string;
  ownerId: string;
  kind: CommitKind;
  imageName?: string;
  registry?: string;
  /** The owner's limit when their resource policy sets none. */
  defaultMaxCustomizedImages: number;
}

const uniqueViolation = '23505';

/**
 * compute_commits rows and the images converts register. A commit is admitted here (one ongoing
 * per session; a convert within the owner's max_customized_images) before its workflow starts.
 */
export function createCommitStore(pool: Pool) {
  return {
    /**
     * Writes the ongoing commit, or refuses with nothing written: InvalidSessionState when the
     * session has an ongoing commit, QuotaExceeded when a convert would give the owner more
     * images of their own than allowed (replacing one of the same name adds none).
     */
    begin(start: CommitStart): Promise<void> {
      return inTransaction(pool, async (db) => {
        await lockUntilCommit(db, `compute-commit/${start.ownerId}`);
        if (start.kind === 'convert') {
          const { limit, held } = await customizedImages(db, start.ownerId, start.defaultMaxCustomizedImages, start.imageName);
          if (held + 1 > limit) {
            throw domainFailure('QuotaExceeded', `at most ${limit} customized images; ${held} are held or being made`, { limit: 'customized_images', requested: 1, available: Math.max(0, limit - held) });
          }
        }
        try {
          await db.query(
            'INSERT INTO compute_commits (id, session_id, owner_id, kind, image_name, registry, status) VALUES ($1, $2, $3, $4, $5, $6, \'ongoing\')',
            [start.commitId, start.sessionId, start.ownerId, start.kind, start.imageName ?? null, start.registry ?? null],
          );
        } catch (err) {
          if ((err as { code?: string }).code !== uniqueViolation) throw err;
          const { rows: [ongoing] } = await pool.query<{ id: string }>('SELECT id FROM compute_commits WHERE session_id = $1 AND status = \'ongoing\'', [start.sessionId]);
          throw domainFailure('InvalidSessionState', `session ${start.sessionId} has a commit going on; one at a time`, { commit_id: ongoing?.id ?? null });
        }
      });
    },

    /** The owner's limit on images of their own, and how many they hold or are being made. */
    customizedImages(ownerId: string, defaultMax: number): Promise<{ limit: number; held: number }> {
      return customizedImages(pool, ownerId, defaultMax);
    },

    /** A commit whose workflow could not be started: as if it was never asked for. */
    async discard(commitId: string): Promise<void> {
      await pool.query('DELETE FROM compute_commits WHERE id = $1 AND status = \'ongoing\'', [commitId]);
    },

    async get(commitId: string, sessionId: string): Promise<CommitRow | undefined> {
      return (await pool.query<CommitRow>('SELECT * FROM compute_commits WHERE id = $1 AND session_id = $2', [commitId, sessionId])).rows[0];
    },

    async latest(sessionId: string): Promise<CommitRow | undefined> {
      return (await pool.query<CommitRow>('SELECT * FROM compute_commits WHERE session_id = $1 ORDER BY created_at DESC, id LIMIT 1', [sessionId])).rows[0];
    },

    /** Progress while the commit goes on; a commit that has ended keeps its last word. */
    async progress(commitId: string, progress: CommitProgress): Promise<void> {
      await pool.query('UPDATE compute_commits SET progress = $2, updated_at = now() WHERE id = $1 AND status = \'ongoing\'', [commitId, progress]);
    },

    /** The commit's end; written once (a retry after it changes nothing). */
    async finish(commitId: string, status: Exclude<CommitStatus, 'ongoing'>, progress: CommitProgress, error?: { code: string; message: string }): Promise<void> {
      await pool.query('UPDATE compute_commits SET status = $2, progress = $3, error = $4, updated_at = now() WHERE id = $1 AND status = \'ongoing\'', [commitId, status, progress, error ?? null]);
    },

    /**
     * The converted image as the owner's own: a session of theirs names it, nobody else's does.
     * Its default resources are those of the session it was made from. Replaces an image of
     * theirs of the same name (the registry's tag moved too).
     */
    async registerImage({ ownerId, sessionId, name, reference, registry }: { ownerId: string; sessionId: string; name: string; reference: string; registry?: string }): Promise<void> {
      await pool.query(
        `INSERT INTO compute_images (name, reference, cpu_millis, memory_bytes, gpu, owner_id, registry)
         SELECT $1, $2, s.cpu_millis, s.memory_bytes, s.gpu, $3, $5 FROM compute_sessions s WHERE s.id = $4
         ON CONFLICT (owner_id, name) WHERE owner_id IS NOT NULL DO UPDATE SET reference = EXCLUDED.reference, registry = EXCLUDED.registry`,
        [name, reference, ownerId, sessionId, registry ?? null],
      );
    },
  };
}

/** The limit (the policy's, else the default) and the distinct names held or being converted, `replacing` aside (converting it again adds none). */
async function customizedImages(db: Pick<Pool, 'query'>, ownerId: string, defaultMax: number, replacing?: string): Promise<{ limit: number; held: number }> {
  const { rows: [row] } = await db.query<{ limit: number | null; held: number }>(
    `SELECT (SELECT max_customized_images FROM compute_resource_policies WHERE user_id = $1) AS limit,
            (SELECT count(DISTINCT name)::int FROM (
               SELECT name FROM compute_images WHERE owner_id = $1
               UNION SELECT image_name FROM compute_commits WHERE owner_id = $1 AND kind = 'convert' AND status = 'ongoing'
             ) AS mine WHERE name IS DISTINCT FROM $2) AS held`,
    [ownerId, replacing ?? null],
  );
  return { limit: row!.limit ?? defaultMax, held: row!.held };
}

export type CommitStore = ReturnType<typeof createCommitStore>;
