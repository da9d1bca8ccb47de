import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { pack } from 'tar-stream';
import { createFileTransferStore } from '../../../activities/compute/fileStore';
import { CappedBuffer, execInKernel } from '../../../activities/compute/kernelExec';
import { kernelFilesSource } from '../../../activities/compute/kernelFilesScript';
import { createComputeNodeActivities, type KernelSpec } from '../../../activities/compute/node';
import { computeSecretsSealer } from '../../../activities/compute/secretStore';
import { maxListEntries, transferChunkBytes } from '../../../domain/compute/files';
import { createUserKey } from '../../../api/platform/auth';
import { eventually, execAsWork, removeComputeLeftovers } from '../../helpers/computeNode';
import { openInfra, type Infra } from '../../helpers/infra';

/**
 * The file activities (activities/compute/kernelFiles.ts) and the kernel's files script in a
 * real kernel on the main engine, under gVisor, with staging rows in the real PostgreSQL: what
 * HTTP cannot reach — a retried upload or download, downloads spanning several chunks, a
 * listing past its cap, and the script's all-or-nothing when its stream is cut.
 */
let infra: Infra;
let activities: ReturnType<typeof createComputeNodeActivities>;
let transfers: ReturnType<typeof createFileTransferStore>;
let ownerId: string;
let containerId: string;
const sessionId = randomUUID();
const env = new MockActivityEnvironment();
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);
const shell = async (script: string) => (await execAsWork(infra.docker, containerId, ['sh', '-c', script])).output;
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err: unknown = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

/** The staged chunks of a download, joined. */
async function stagedBytes(transferId: string, chunks: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let seq = 0; seq < chunks; seq++) parts.push((await transfers.part(transferId, seq))!);
  return Buffer.concat(parts);
}

beforeAll(async () => {
  infra = openInfra();
  activities = createComputeNodeActivities({
    docker: infra.docker, pool: infra.pool, instance: infra.config.SESSIONFLOW_INSTANCE, sealer: computeSecretsSealer(infra.config.COMPUTE_SECRETS_KEY),
    containerRuntime: infra.containerRuntime, registryAddress: infra.config.REGISTRY_ADDRESS,
  });
  transfers = createFileTransferStore(infra.pool);
  ({ userId: ownerId } = await createUserKey(infra.pool, `files-${randomUUID().slice(0, 8)}`, 'user', 'test'));
  // Staging rows belong to a session row.
  await infra.pool.query(`INSERT INTO compute_sessions (id, owner_id, name, status, image, scaling_group, cluster_mode, cluster_size, cpu_millis, memory_bytes, gpu, params)
    VALUES ($1, $2, 'files', 'RUNNING', 'python:3.11', 'default', 'single-node', 1, 1000, 268435456, 0, '{}')`, [sessionId, ownerId]);
  await run(activities.pullKernelImage, { reference: infra.config.COMPUTE_KERNEL_IMAGE });
  const spec: KernelSpec = {
    sessionId, ownerId, kernelId: randomUUID(), hostname: 'main1', role: 'main', idx: 1, imageReference: infra.config.COMPUTE_KERNEL_IMAGE,
    resources: { cpuMillis: 1000, memoryBytes: 256 * 1024 * 1024, gpu: 0 }, env: {}, vfolders: [], clusterHosts: ['main1'],
  };
  ({ containerId } = await run(activities.createKernel, spec));
  await eventually(async () => ((await run(activities.kernelBootstrapState, { containerId })).done ? true : undefined));
}, 180_000);
afterAll(async () => {
  await removeComputeLeftovers(infra.docker, infra.config.SESSIONFLOW_INSTANCE, [sessionId], []);
  await infra.pool.query('DELETE FROM users WHERE id = $1', [ownerId]);
  await infra.close();
});

describe('uploadKernelFiles', () => {
  it('writes the staged files owned by work, and a retry writes the same files again', async () => {
    const data = randomBytes(300_000);
    const transferId = await transfers.createUpload(sessionId, [{ name: 'retry/a.bin', data }, { name: 'retry/b.txt', data: Buffer.from('b') }]);
    const first = await run(activities.uploadKernelFiles, { containerId, sessionId, transferId, path: '/home/work' });
    const again = await run(activities.uploadKernelFiles, { containerId, sessionId, transferId, path: '/home/work' });
    expect(again).toEqual(first);
    expect(first).toEqual({ path: '/home/work', files: [{ name: 'retry/a.bin', size: 300_000 }, { name: 'retry/b.txt', size: 1 }] });
    expect(await shell('cd retry && sha256sum a.bin | cut -d" " -f1 && stat -c "%U %a" a.bin b.txt . && ls -A')).toBe(`${sha(data)}\nwork 644\nwork 644\nwork 755\na.bin\nb.txt\n`);
  });

  it('refuses a transfer that is not this session\'s upload with NotFound', async () => {
    const download = await transfers.createDownload(sessionId);
    expect((await failureOf(run(activities.uploadKernelFiles, { containerId, sessionId, transferId: download, path: '/home/work' }))).type).toBe('NotFound');
    expect((await failureOf(run(activities.uploadKernelFiles, { containerId, sessionId: randomUUID(), transferId: download, path: '/home/work' }))).type).toBe('NotFound');
  });
});

describe('the kernel files script, fed directly', () => {
  const upload = async (manifest: { name: string; size: number }[], archive: Buffer) => {
    const stdout = new CappedBuffer(4096);
    const answer = await run(() => execInKernel(infra.docker, containerId, {
      cmd: ['python3', '-I', '-S', '-c', kernelFilesSource, 'upload', '/home/work/cut', JSON.stringify(manifest), '20', String(1024 * 1024)], stdin: archive, stdout, waitMs: 30_000,
    }));
    return { exitCode: await answer.exitCode(), stderr: answer.stderr };
  };
  const tarOf = async (files: { name: string; data: Buffer }[]) => {
    const archive = pack();
    for (const file of files) archive.entry({ name: file.name, size: file.data.length }, file.data);
    archive.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of archive) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };

  it('writes nothing — not the first file, not the directories it made — when the stream is cut in the middle', async () => {
    const whole = await tarOf([{ name: '0', data: Buffer.from('first') }, { name: '1', data: randomBytes(100_000) }]);
    const cut = await upload([{ name: 'd/first.txt', size: 5 }, { name: 'd/second.bin', size: 100_000 }], whole.subarray(0, 60_000));
    expect(cut.exitCode).not.toBe(0);
    expect(await shell('ls -A /home/work/cut 2>&1 || true')).toMatch(/No such file or directory/);
  });

  it('writes nothing when a member does not match its manifest', async () => {
    const mismatched = await upload([{ name: 'one.txt', size: 3 }, { name: 'two.txt', size: 3 }], await tarOf([{ name: '0', data: Buffer.from('one') }, { name: '1', data: Buffer.from('four') }]));
    expect(mismatched.exitCode).toBe(2);
    expect(JSON.parse(mismatched.stderr)).toMatchObject({ error: 'ValidationFailed', message: expect.stringContaining('does not match its manifest') });
    expect(await shell('ls -A /home/work/cut 2>&1 || true')).toMatch(/No such file or directory/);
  });
});

describe('downloadKernelFiles', () => {
  it('stages a file of several chunks whole, and a retry stages the same chunks again', async () => {
    await shell('head -c 3500000 /dev/urandom > chunks.bin');
    const expected = (await shell('sha256sum chunks.bin | cut -d" " -f1')).trim();
    const transferId = await transfers.createDownload(sessionId);
    const request = { containerId, sessionId, transferId, paths: ['/home/work/chunks.bin'], archive: false, maxBytes: 8 * 1024 * 1024 };
    const first = await run(activities.downloadKernelFiles, request);
    expect(first).toEqual({ kind: 'file', name: 'chunks.bin', bytes: 3_500_000, chunks: Math.ceil(3_500_000 / transferChunkBytes) });
    const again = await run(activities.downloadKernelFiles, request);
    expect(again).toEqual(first);
    expect(sha(await stagedBytes(transferId, again.chunks))).toBe(expected);
    const { rows } = await infra.pool.query('SELECT count(*)::int AS n FROM compute_file_transfer_parts WHERE transfer_id = $1', [transferId]);
    expect(rows[0].n).toBe(first.chunks);
    await transfers.deleteTransfer(transferId);
  });

  it('refuses past maxBytes before staging anything (DownloadTooLarge)', async () => {
    const transferId = await transfers.createDownload(sessionId);
    const refused = await failureOf(run(activities.downloadKernelFiles, { containerId, sessionId, transferId, paths: ['chunks.bin'], archive: true, maxBytes: 1024 * 1024 }));
    expect(refused.type).toBe('DownloadTooLarge');
    expect(await transfers.part(transferId, 0)).toBeUndefined();
    await transfers.deleteTransfer(transferId);
  });
});

describe('listKernelFiles', () => {
  it('answers at most maxListEntries entries, the first by name, marked truncated', async () => {
    await shell(`mkdir -p crowd && cd crowd && seq -w 1 ${maxListEntries + 50} | xargs touch`);
    const listing = await run(activities.listKernelFiles, { containerId, path: '/home/work/crowd', showHidden: false });
    expect(listing.truncated).toBe(true);
    expect(listing.entries).toHaveLength(maxListEntries);
    expect(listing.entries[0]!.name).toBe('0001');
    expect(listing.entries.at(-1)!.name).toBe(String(maxListEntries).padStart(4, '0'));
  });
});
