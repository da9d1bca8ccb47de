import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { commitImageTag, convertTarget } from '../../domain/compute/imageCommit';
import { computeSessionLabel } from '../../activities/compute/node';
import { deleteManifest, manifestDigest } from '../../activities/shared/registry';

const run = promisify(execFile);

type Call = (method: string, path: string, expected: number, body?: unknown) => Promise<Record<string, unknown>>;

export interface CommitBenchRow {
  sizeMb: number;
  floorMs: number;
  oursMs: number;
  /** bytes_pushed as the api answered it while the push went on: each new value, in order. */
  progress: number[];
}

/**
 * Commit + push of a session with `sizeMb` of added data through the api (convert to the local
 * registry), beside `docker commit` + `docker push` of the same container by hand (the floor).
 * Each measurement writes fresh random data first, so the registry has none of its layer.
 */
export async function benchCommit({ call, docker, sessionId, ownerId, registryAddress, sizesMb }: {
  call: Call; docker: Docker; sessionId: string; ownerId: string; registryAddress: string; sizesMb: number[];
}): Promise<CommitBenchRow[]> {
  const rows: CommitBenchRow[] = [];
  const pushed: string[] = [];
  const write = async (sizeMb: number) => {
    await call('POST', `/api/v1/sessions/${sessionId}/execute`, 200, { mode: 'batch', code: `rm -f added && head -c ${sizeMb}M /dev/urandom > added`, timeout: 600 });
  };
  const [kernel] = await docker.listContainers({ filters: { label: [`${computeSessionLabel}=${sessionId}`] } });
  if (!kernel) throw new Error(`no kernel container of session ${sessionId}`);
  const containerId = kernel.Id;
  try {
    for (const sizeMb of sizesMb) {
      await write(sizeMb);
      const floorRef = `${registryAddress}/bench-floor/${sessionId}:${sizeMb}`;
      pushed.push(floorRef);
      const floorStarted = performance.now();
      await run('docker', ['commit', '--pause', containerId, floorRef]);
      await run('docker', ['push', floorRef], { maxBuffer: 64 * 2 ** 20 });
      const floorMs = performance.now() - floorStarted;
      await run('docker', ['rmi', floorRef]);

      await write(sizeMb);
      const imageName = `bench-${sizeMb}:v1`;
      pushed.push(convertTarget(registryAddress, ownerId, imageName).reference);
      const started = performance.now();
      const { commit_id: commitId } = await call('POST', `/api/v1/sessions/${sessionId}/convert`, 202, { image_name: imageName }) as { commit_id: string };
      const progress: number[] = [];
      for (;;) {
        const commit = await call('GET', `/api/v1/sessions/${sessionId}/commits/${commitId}`, 200) as { status: string; error: unknown; progress: { bytes_pushed: number } };
        if (commit.progress.bytes_pushed > (progress.at(-1) ?? 0)) progress.push(commit.progress.bytes_pushed);
        if (commit.status !== 'ongoing') {
          if (commit.status !== 'finished') throw new Error(`convert ${commitId} ended ${commit.status}: ${JSON.stringify(commit.error)}`);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const oursMs = performance.now() - started;
      const { repo, tag } = commitImageTag(commitId);
      await docker.getImage(`${repo}:${tag}`).remove().catch(() => undefined);
      rows.push({ sizeMb, floorMs, oursMs, progress });
    }
  } finally {
    for (const reference of pushed) {
      const path = reference.slice(registryAddress.length + 1);
      const colon = path.lastIndexOf(':');
      const digest = await manifestDigest(registryAddress, path.slice(0, colon), path.slice(colon + 1)).catch(() => undefined);
      if (digest) await deleteManifest(registryAddress, path.slice(0, colon), digest).catch(() => undefined);
    }
  }
  return rows;
}

export function printCommitBench(rows: CommitBenchRow[]): void {
  console.log('\ncommit + push of a session (convert to the local registry) beside docker commit + docker push by hand');
  for (const row of rows) {
    const mbps = (ms: number) => (row.sizeMb / (ms / 1000)).toFixed(1);
    console.log(`  ${row.sizeMb} MB added: floor ${row.floorMs.toFixed(0)} ms (${mbps(row.floorMs)} MB/s), convert ${row.oursMs.toFixed(0)} ms (${mbps(row.oursMs)} MB/s) = ${(row.oursMs / row.floorMs).toFixed(2)}× the floor; progress seen rising ${row.progress.length} times, last ${row.progress.at(-1) ?? 0} bytes`);
  }
}
