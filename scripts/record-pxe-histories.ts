import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { openRecorder, saveHistory } from './recorder';
import { createUserKey } from '../api/platform/auth';
import { domainFailure } from '../domain/shared/errors';
import { pxeBootServerStatusKind, pxeImageKind } from '../domain/pxe/kind';
import { makePxeWorkflowId, pxeSessionStateQuery, stopPxeSessionUpdate } from '../domain/pxe/pxe';
import { type Pool } from '../platform/database';
import { createSessionflowWorker } from '../workers/createWorker';

/**
 * Re-records the PXE session histories in test/replay/histories from real runs: a real sshd,
 * tgtd and in.tftpd on loopback (test/helpers/pxeLab), dhcpd -t. Scenarios: a start that
 * reached ACTIVE, a start followed by a stop, and a failure at the DHCP step compensated; an
 * image prepared (READY) and one whose file is missing (ERROR); a boot server's adapters probed.
 */
/**
 * The lab lives with the tests (test/helpers/pxeLab.ts), compiled by tsconfig.bench.json; it is
 * loaded at run time so the production build (which ships no test code) does not depend on it.
 */
interface LabHelpers {
  startPxeLab(pool: Pool): Promise<{ bootServerId: string; stop(): Promise<void> }>;
  seedPxeFixtures(pool: Pool, lab: unknown, ownerId: string, count: number): Promise<{ imageId: string; machines: { id: string }[] }>;
  insertSessionRow(pool: Pool, ownerId: string, machineId: string, imageId: string): Promise<string>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startPxeLab, seedPxeFixtures, insertSessionRow } = require(resolve(__dirname, '../test/helpers/pxeLab')) as LabHelpers;

async function main(): Promise<void> {
  const recorder = await openRecorder(4);
  const { config, pool, activities, connection, client } = recorder;
  const lab = await startPxeLab(pool);
  const { userId } = await createUserKey(pool, `pxe-recorder-${randomUUID().slice(0, 8)}`, 'user', 'recorder');

  const scenarios: { file: string; activities: typeof activities; stop: boolean }[] = [
    { file: 'pxeSession-started.json', activities, stop: false },
    { file: 'pxeSession-started-stopped.json', activities, stop: true },
    { file: 'pxeSession-dhcp-failed-compensated.json', activities: { ...activities, addDhcpHost: () => Promise.reject(domainFailure('DhcpConfigInvalid', 'recorded fault')) }, stop: false },
  ];
  try {
    for (const scenario of scenarios) {
      const { imageId, machines: [machine] } = await seedPxeFixtures(pool, lab, userId, 1);
      const sessionId = await insertSessionRow(pool, userId, machine!.id, imageId);
      const taskQueue = `record-${randomUUID()}`;
      const worker = await createSessionflowWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, activities: scenario.activities, workflowBundlePath: recorder.workflowBundlePath });
      const workflowId = makePxeWorkflowId(machine!.id);
      await worker.runUntil(async () => {
        const handle = await client.workflow.start('pxeSessionWorkflow', { workflowId, taskQueue, args: [{ sessionId, machineId: machine!.id, ownerId: userId }] });
        let state = await handle.query(pxeSessionStateQuery);
        while (state.status === 'STARTING') {
          await new Promise((r) => setTimeout(r, 100));
          state = await handle.query(pxeSessionStateQuery);
        }
        if (scenario.stop) await handle.executeUpdate(stopPxeSessionUpdate, { args: [{}] });
      });
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      await saveHistory(history, scenario.file);
      if (!scenario.stop) await client.workflow.getHandle(workflowId).terminate('recorded').catch(() => undefined);
    }

    const taskQueue = `record-${randomUUID()}`;
    const worker = await createSessionflowWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, activities, workflowBundlePath: recorder.workflowBundlePath });
    await worker.runUntil(async () => {
      for (const { file, filename } of [{ file: 'pxeImage-ready.json', filename: 'disk.img' }, { file: 'pxeImage-missing-file.json', filename: 'missing.img' }]) {
        const { rows: [image] } = await pool.query<{ id: string }>(
          `INSERT INTO pxe_images (owner_id, boot_server_id, name, filename, format, status) VALUES ($1, $2, $3, $4, 'raw', 'PENDING') RETURNING id`,
          [userId, lab.bootServerId, `recorded-${randomUUID().slice(0, 6)}`, filename],
        );
        const workflowId = pxeImageKind.workflowId(image!.id);
        await client.workflow.execute(pxeImageKind.workflowType, { workflowId, taskQueue, args: [{ imageId: image!.id }] });
        await saveHistory(await client.workflow.getHandle(workflowId).fetchHistory(), file);
      }
      const workflowId = pxeBootServerStatusKind.workflowId(lab.bootServerId, randomUUID());
      await client.workflow.execute(pxeBootServerStatusKind.workflowType, { workflowId, taskQueue, args: [{ bootServerId: lab.bootServerId }] });
      await saveHistory(await client.workflow.getHandle(workflowId).fetchHistory(), 'pxeBootServerStatus-probed.json');
    });
  } finally {
    await lab.stop();
    await recorder.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
