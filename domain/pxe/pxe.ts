import { defineQuery, defineUpdate } from '@temporalio/workflow';
import { diskLun, type TargetDriverName, type TargetSpec } from './iscsiTarget';
import { macHyphenated, machineScriptPath } from './mac';

/**
 * PXE diskless-boot sessions: ids, messages and the plan shared by the api, the
 * `pxe/<machineId>` saga workflow and its activities.
 */

/**
 * One boot session per machine at a time: the workflow id is the machine, so Temporal's id
 * uniqueness refuses a second start while one runs (the api answers 409 MachineBusy).
 */
export function makePxeWorkflowId(machineId: string): string {
  return `pxe/${machineId}`;
}

/** Image preparation (check the file, convert to raw) runs once per image. */
export function makePxeImageWorkflowId(imageId: string): string {
  return `pxe-image/${imageId}`;
}

export const pxeSessionStatuses = ['STARTING', 'ACTIVE', 'STOPPING', 'STOPPED', 'FAILED'] as const;
export type PxeSessionStatus = (typeof pxeSessionStatuses)[number];
/** Statuses that hold a machine: a second session must wait until it leaves them. */
export const pxeBusyStatuses: PxeSessionStatus[] = ['STARTING', 'ACTIVE', 'STOPPING'];

export const pxeImageFormats = ['raw', 'qcow2', 'vhdx'] as const;
export type PxeImageFormat = (typeof pxeImageFormats)[number];
export const pxeImageStatuses = ['PENDING', 'CONVERTING', 'READY', 'ERROR'] as const;
export type PxeImageStatus = (typeof pxeImageStatuses)[number];

export const pxeSessionTypes = ['DISKLESS_BOOT'] as const;

/** The saga's steps, in start order; stop and compensation walk them backwards. */
export type PxeStep = 'disk' | 'target' | 'script' | 'dhcp';

export interface PxeSessionInput {
  sessionId: string;
  machineId: string;
  ownerId: string;
}

/** Everything the saga needs, read once from the database by the first activity. */
export interface PxeSessionPlan {
  sessionId: string;
  machineId: string;
  machineName: string;
  mac: string;
  ip: string;
  bootServerId: string;
  driver: TargetDriverName;
  portalIp: string;
  lun: number;
  target: TargetSpec;
  /** The READY raw image the session's disk is copied from. */
  imagePath: string;
  /** Relative to the boot server's TFTP root. */
  scriptPath: string;
}

interface PlanSources {
  sessionId: string;
  machine: { id: string; name: string; mac: string; ip: string; tid: number };
  image: { rawPath: string };
  bootServer: { id: string; targetDriver: TargetDriverName; portalIp: string; iqnPrefix: string; imageDir: string; tgtControlPort: number | null };
}

/** Names on the boot server derive from the machine, so a retried step finds its own work. */
export function planPxeSession({ sessionId, machine, image, bootServer }: PlanSources): PxeSessionPlan {
  const hyphenated = macHyphenated(machine.mac);
  return {
    sessionId,
    machineId: machine.id,
    machineName: machine.name,
    mac: machine.mac,
    ip: machine.ip,
    bootServerId: bootServer.id,
    driver: bootServer.targetDriver,
    portalIp: bootServer.portalIp,
    lun: diskLun(bootServer.targetDriver),
    target: {
      tid: machine.tid,
      targetIqn: `${bootServer.iqnPrefix}:target-${hyphenated}`,
      initiatorIqn: `${bootServer.iqnPrefix}:initiator-${hyphenated}`,
      diskPath: `${bootServer.imageDir.replace(/\/+$/, '')}/sessions/${sessionId}.img`,
      backstoreName: `sf-${hyphenated}`,
      tgtControlPort: bootServer.tgtControlPort,
    },
    imagePath: image.rawPath,
    scriptPath: machineScriptPath(machine.mac),
  };
}

export interface PxeSessionState {
  sessionId: string;
  status: PxeSessionStatus;
  /** Steps done and not yet undone, in start order. */
  done: PxeStep[];
  error?: { type: string; message: string; step?: PxeStep };
}

export const pxeSessionStateQuery = defineQuery<PxeSessionState>('pxeSessionState');
/** Stop the session: tears everything down (idempotent) and returns the final state. */
export const stopPxeSessionUpdate = defineUpdate<PxeSessionState, [{ reason?: string }]>('stopPxeSession');
