import type { Pool } from 'pg';
import type { CommitProgress, CommitStatus } from '../../domain/compute/imageCommit';
import { createCommitStore } from './commitStore';

/** The control plane's side of a commit, on the main task queue: its row and the image it registers. Each is safe to retry. */
export function createImageCommitControlActivities({ pool }: { pool: Pool }) {
  const commits = createCommitStore(pool);
  return {
    async recordImageCommitProgress({ commitId, progress }: { commitId: string; progress: CommitProgress }): Promise<void> {
      await commits.progress(commitId, progress);
    },

    async finishImageCommit({ commitId, status, progress, error }: { commitId: string; status: Exclude<CommitStatus, 'ongoing'>; progress: CommitProgress; error?: { code: string; message: string } }): Promise<void> {
      await commits.finish(commitId, status, progress, error);
    },

    async registerCommitImage(image: { ownerId: string; sessionId: string; name: string; reference: string; registry?: string }): Promise<void> {
      await commits.registerImage(image);
    },
  };
}

export type ImageCommitControlActivities = ReturnType<typeof createImageCommitControlActivities>;
