import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createUserKey } from '../../api/platform/auth';
import { countDhcpHostEntries } from '../../domain/pxe/dhcpHosts';
import { domainFailure } from '../../domain/shared/errors';
import { macHyphenated } from '../../domain/pxe/mac';
import { pxeSessionStateQuery, stopPxeSessionUpdate, type PxeSessionState } from '../../domain/pxe/pxe';
import { pxeSessionKind } from '../../domain/pxe/kind';
import { sessionStartOptions } from '../../domain/shared/kind';
import { MachineMac, SessionDetail, SessionStatus } from '../../domain/shared/searchAttributes';
import type { pxeSessionWorkflow } from '../../workflows/pxe/pxeSession';
import { eventually } from '../helpers/api';
import { openInfra, type Infra } from '../helpers/infra';
import { insertSessionRow, seedPxeFixtures, startPxeLab, type PxeLab } from '../helpers/pxeLab';
import { connectTestEnv, createTestWorker, uniqueTaskQueue } from '../helpers/temporal';

jest.setTimeout(300_000);

let env: TestWorkflowEnvironment;
let infra: Infra;
let lab: PxeLab;
let ownerId: string;
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  lab = await startPxeLab(infra.pool);
  ({ userId: ownerId } = await createUserKey(infra.pool, `pxe-saga-${Date.now()}`, 'user', 'test'));
}, 60_000);
afterAll(async () => {
  await lab?.stop();
  await infra.close();
  await env.teardown();
});

type Activities = Infra['activities'];
let latestImageId = '';

async function runSession(activities: Activities, machines = 1) {
  const { imageId, machines: created } = await seedPxeFixtures(infra.pool, lab, ownerId, machines);
  latestImageId = imageId;
  const taskQueue = uniqueTaskQueue('pxe-saga');
  const worker = await createTestWorker(env, taskQueue, activities);
  const start = async (machine: (typeof created)[number]) => {
    const sessionId = await insertSessionRow(infra.pool, ownerId, machine.id, imageId);
    const handle = await env.client.workflow.start<typeof pxeSessionWorkflow>(pxeSessionKind.workflowType, {
      ...sessionStartOptions(pxeSessionKind, { key: [machine.id], taskQueue, status: 'STARTING', ownerId, attributes: [{ key: MachineMac, value: machine.mac }], summary: `saga test on ${machine.mac}` }),
      args: [{ sessionId, machineId: machine.id, ownerId }],
    });
    return { sessionId, handle, machine };
  };
  return { worker, start, machines: created };
}

const untilSettled = async (handle: { query: (q: typeof pxeSessionStateQuery) => Promise<PxeSessionState> }) =>
  // Generous: on a machine shared with other suites a start can take tens of seconds.
  eventually(() => handle.query(pxeSessionStateQuery), (s) => s.status !== 'STARTING', 180_000);

async function row(sessionId: string) {
  const { rows: [r] } = await infra.pool.query('SELECT status, error, dhcp_entry, boot_script FROM pxe_sessions WHERE id = $1', [sessionId]);
  return r;
}

/** Everything a session leaves on the boot server, as the real tools see it. */
function traces(machine: { mac: string }, sessionId: string) {
  const hosts = existsSync(lab.hostsFile) ? readFileSync(lab.hostsFile, 'utf8') : '';
  return {
    disk: existsSync(join(lab.imageDir, 'sessions', `${sessionId}.img`)),
    target: lab.targets().includes(`target-${macHyphenated(machine.mac)}`),
    script: existsSync(join(lab.tftpRoot, 'machines', `${macHyphenated(machine.mac)}.ipxe`)),
    dhcp: hosts.includes(machine.mac),
  };
}
const nothing = { disk: false, target: false, script: false, dhcp: false };

describe('pxeSessionWorkflow on real tgtd, dhcpd -t and in.tftpd over SSH', () => {
  it('starts a session: disk, iSCSI target with the ACL, iPXE script fetched back over TFTP, DHCP entry; then stops it leaving nothing', async () => {
    const { worker, start, machines } = await runSession(infra.activities);
    await worker.runUntil(async () => {
      const { sessionId, handle, machine } = await start(machines[0]!);
      expect((await untilSettled(handle)).status).toBe('ACTIVE');
      expect(await row(sessionId)).toMatchObject({ status: 'ACTIVE', dhcp_entry: true, error: null });
      expect(traces(machine, sessionId)).toEqual({ disk: true, target: true, script: true, dhcp: true });

      const shown = lab.targets();
      expect(shown).toContain(`iqn.2025-01.dev.sessionflow:target-${macHyphenated(machine.mac)}`);
      expect(shown).toContain(`iqn.2025-01.dev.sessionflow:initiator-${macHyphenated(machine.mac)}`);
      expect(shown).toContain(join(lab.imageDir, 'sessions', `${sessionId}.img`));

      const fetched = lab.tftpGet(`machines/${macHyphenated(machine.mac)}.ipxe`);
      expect(fetched).toBe((await row(sessionId)).boot_script);
      expect(fetched).toMatch(/^#!ipxe\n/);
      expect(fetched).toContain(`sanboot iscsi:127.0.0.1:::1:iqn.2025-01.dev.sessionflow:target-${macHyphenated(machine.mac)} || goto failed`);
      expect(readFileSync(lab.hostsFile, 'utf8')).toContain(`fixed-address ${machine.ip};`);

      const stopped = await handle.executeUpdate(stopPxeSessionUpdate, { args: [{}] });
      expect(stopped.status).toBe('STOPPED');
      expect(stopped.done).toEqual([]);
      expect(await row(sessionId)).toMatchObject({ status: 'STOPPED', dhcp_entry: false, boot_script: null });
      expect(traces(machine, sessionId)).toEqual(nothing);
      expect(lab.tftpGet(`machines/${macHyphenated(machine.mac)}.ipxe`)).toBeUndefined();
      const attributes = (await handle.describe()).typedSearchAttributes;
      expect([attributes.get(SessionStatus), attributes.get(SessionDetail)]).toEqual(['ENDED', 'STOPPED']);
    });
  });

  it('answers a second stop with the same stopped state', async () => {
    const { worker, start, machines } = await runSession(infra.activities);
    await worker.runUntil(async () => {
      const { handle } = await start(machines[0]!);
      await untilSettled(handle);
      const first = await handle.executeUpdate(stopPxeSessionUpdate, { args: [{}] });
      expect(first.status).toBe('STOPPED');
      expect((await handle.result()).status).toBe('STOPPED');
    });
  });

  const steps = [
    ['preparePxeSession', 'ensureSessionDisk'],
    ['ensureSessionDisk', 'ensureSessionDisk'],
    ['ensureIscsiTarget', 'ensureIscsiTarget'],
    ['writeTftpScript', 'writeTftpScript'],
    ['addDhcpHost', 'addDhcpHost'],
  ] as const;

  it.each(steps)('undoes everything in reverse when %s fails after doing its work, ending FAILED with the cause', async (failing) => {
    const real = infra.activities[failing] as (...args: unknown[]) => Promise<unknown>;
    const faulty: Activities = {
      ...infra.activities,
      [failing]: async (...args: unknown[]) => {
        await real(...args);
        throw domainFailure('BootServerCommandFailed', `injected failure after ${failing}`);
      },
    };
    const { worker, start, machines } = await runSession(faulty);
    await worker.runUntil(async () => {
      const { sessionId, handle, machine } = await start(machines[0]!);
      const state = await handle.result();
      expect(state.status).toBe('FAILED');
      expect(state.error).toMatchObject({ type: 'BootServerCommandFailed', message: `injected failure after ${failing}` });
      expect(state.done).toEqual([]);
      expect(await row(sessionId)).toMatchObject({ status: 'FAILED', dhcp_entry: false, error: expect.objectContaining({ type: 'BootServerCommandFailed' }) });
      expect(traces(machine, sessionId)).toEqual(nothing);
    });
  });

  it('ends FAILED naming the leftover when undoing a step fails too', async () => {
    const faulty: Activities = {
      ...infra.activities,
      ensureIscsiTarget: async () => {
        throw domainFailure('BootServerCommandFailed', 'injected target failure');
      },
      removeIscsiTarget: async () => {
        throw domainFailure('BootServerCommandFailed', 'injected undo failure');
      },
    };
    const { worker, start, machines } = await runSession(faulty);
    await worker.runUntil(async () => {
      const { sessionId, handle, machine } = await start(machines[0]!);
      const state = await handle.result();
      expect(state.status).toBe('FAILED');
      expect(state.error).toMatchObject({ type: 'BootServerCommandFailed', step: 'target' });
      expect(state.error?.message).toContain('injected target failure; undoing it failed too');
      expect(state.done).toEqual(['disk']);
      expect(await row(sessionId)).toMatchObject({ status: 'FAILED' });
      // What the saga could not undo is still there, as it said; clean it up by hand.
      expect(traces(machine, sessionId).disk).toBe(true);
      const plan = await infra.activities.preparePxeSession({ sessionId });
      await infra.activities.removeIscsiTarget(plan);
      await infra.activities.removeSessionDisk(plan);
      expect(traces(machine, sessionId)).toEqual(nothing);
    });
  });

  it('fails with ImageNotReady, leaving nothing, when the image file vanished from the boot server', async () => {
    const { worker, start, machines } = await runSession(infra.activities);
    await infra.pool.query(`UPDATE pxe_images SET raw_filename = 'gone.img' WHERE id = $1`, [latestImageId]);
    await worker.runUntil(async () => {
      const { sessionId, handle, machine } = await start(machines[0]!);
      const state = await handle.result();
      expect(state).toMatchObject({ status: 'FAILED', error: { type: 'ImageNotReady', step: 'disk' } });
      expect(traces(machine, sessionId)).toEqual(nothing);
    });
  });

  it('undoes what the start did when the start is cancelled midway', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let reachedScript!: () => void;
    const atScript = new Promise<void>((resolve) => (reachedScript = resolve));
    const slow: Activities = {
      ...infra.activities,
      writeTftpScript: async (input) => {
        await infra.activities.writeTftpScript(input);
        reachedScript();
        await gate;
      },
    };
    const { worker, start, machines } = await runSession(slow);
    await worker.runUntil(async () => {
      const { sessionId, handle, machine } = await start(machines[0]!);
      await atScript;
      await handle.cancel();
      release();
      const state = await handle.result();
      expect(state).toMatchObject({ status: 'FAILED', error: { type: 'Cancelled' } });
      expect(traces(machine, sessionId)).toEqual(nothing);
    });
  });

  it('coalesces the DHCP rewrites of concurrent starts: one valid hosts file with every machine once, fewer restarts than sessions', async () => {
    const count = 8;
    const before = lab.restarts();
    const { worker, start, machines } = await runSession(infra.activities, count);
    await worker.runUntil(async () => {
      const sessions = await Promise.all(machines.map((m) => start(m)));
      const states = await Promise.all(sessions.map(({ handle }) => untilSettled(handle)));
      expect(states.map((s) => s.status)).toEqual(Array(count).fill('ACTIVE'));
      const hosts = readFileSync(lab.hostsFile, 'utf8');
      for (const m of machines) expect(hosts.split(m.mac).length - 1).toBe(1);
      expect(countDhcpHostEntries(hosts)).toBeGreaterThanOrEqual(count);
      expect(lab.restarts() - before).toBeLessThan(count);
      await Promise.all(sessions.map(({ handle }) => handle.executeUpdate(stopPxeSessionUpdate, { args: [{}] })));
      const after = readFileSync(lab.hostsFile, 'utf8');
      for (const m of machines) expect(after).not.toContain(m.mac);
    });
  });
});
