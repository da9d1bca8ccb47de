import * as workflows from '../../workflows';
import { executionKind, executionPoolKind } from '../../domain/execution/kind';
import { pxeBootServerStatusKind, pxeImageKind, pxeSessionKind } from '../../domain/pxe/kind';
import { retentionSweepKind } from '../../domain/retention/kind';
import { sandboxKind, sandboxSweepKind } from '../../domain/sandbox/kind';
import { selfCheckKind } from '../../domain/selfCheck/kind';
import { computeReconcileKind, computeSessionKind, imageCommitKind } from '../../domain/compute/kind';
import { computeStatuses } from '../../domain/compute/status';
import { terminalKind } from '../../domain/terminal/kind';
import { sessionStartOptions, sessionWorkflowTaskTimeout, statusAttributes } from '../../domain/shared/kind';
import { lifecycleStatuses } from '../../domain/shared/lifecycle';
import { ChatId, OwnerId, Runtime, SessionDetail, SessionKind, SessionStatus } from '../../domain/shared/searchAttributes';
import { pxeImageStatuses, pxeSessionStatuses } from '../../domain/pxe/pxe';
import { terminalStatuses } from '../../domain/terminal/terminal';

const manifests = [selfCheckKind, executionKind, executionPoolKind, sandboxKind, sandboxSweepKind, retentionSweepKind, terminalKind, pxeSessionKind, pxeImageKind, pxeBootServerStatusKind, computeSessionKind, computeReconcileKind, imageCommitKind];

describe('session kind manifests', () => {
  it('name every workflow the worker runs, each once', () => {
    expect(manifests.map((m) => m.workflowType).sort()).toEqual(Object.keys(workflows).sort());
    expect(new Set(manifests.map((m) => m.kind)).size).toBe(manifests.length);
  });

  it('map every status onto a lifecycle word', () => {
    for (const manifest of manifests) {
      for (const word of Object.values(manifest.lifecycle)) expect(lifecycleStatuses).toContain(word);
    }
    expect(Object.keys(pxeSessionKind.lifecycle).sort()).toEqual([...pxeSessionStatuses].sort());
    expect(Object.keys(pxeImageKind.lifecycle).sort()).toEqual([...pxeImageStatuses].sort());
    expect(Object.keys(terminalKind.lifecycle).sort()).toEqual([...terminalStatuses].sort());
  });

  it('call a session in use RUNNING whatever the kind', () => {
    expect([terminalKind.lifecycle.active, pxeSessionKind.lifecycle.ACTIVE, sandboxKind.lifecycle.RUNNING, executionKind.lifecycle.RUNNING]).toEqual(['RUNNING', 'RUNNING', 'RUNNING', 'RUNNING']);
  });

  it('end an execution whose program failed, and fail one that could not run', () => {
    expect(executionKind.lifecycle.RE).toBe('ENDED');
    expect(executionKind.lifecycle.TO).toBe('ENDED');
    expect(executionKind.lifecycle.XX).toBe('FAILED');
  });
});

describe('the compute session manifest', () => {
  it('maps every compute status onto a lifecycle word: in use RUNNING, ended as asked ENDED, ERROR FAILED', () => {
    expect(Object.keys(computeSessionKind.lifecycle).sort()).toEqual([...computeStatuses].sort());
    for (const word of Object.values(computeSessionKind.lifecycle)) expect(lifecycleStatuses).toContain(word);
    expect([computeSessionKind.lifecycle.RUNNING, computeSessionKind.lifecycle.TERMINATED, computeSessionKind.lifecycle.CANCELLED, computeSessionKind.lifecycle.ERROR]).toEqual(['RUNNING', 'ENDED', 'ENDED', 'FAILED']);
    expect(computeSessionKind.workflowId('abc')).toBe('session/abc');
  });
});

describe('statusAttributes', () => {
  it('puts the lifecycle word in SessionStatus and the kind\'s own status in SessionDetail', () => {
    expect(statusAttributes(pxeSessionKind, 'ACTIVE')).toEqual([{ key: SessionStatus, value: 'RUNNING' }, { key: SessionDetail, value: 'ACTIVE' }]);
    expect(statusAttributes(terminalKind, 'expired')).toEqual([{ key: SessionStatus, value: 'ENDED' }, { key: SessionDetail, value: 'expired' }]);
  });
});

describe('sessionStartOptions', () => {
  it('builds the id, queue, search attributes and summary from the manifest', () => {
    const options = sessionStartOptions(sandboxKind, {
      key: ['c0ffee00-0000-4000-8000-000000000000'], taskQueue: 'q', status: 'CREATING', ownerId: 'u1',
      attributes: [{ key: ChatId, value: 'c0ffee00-0000-4000-8000-000000000000' }], summary: 'Sandbox of chat c0ffee00', details: 'owner u1',
    });
    expect(options).toEqual({
      workflowId: 'sandbox/c0ffee00-0000-4000-8000-000000000000',
      taskQueue: 'q',
      workflowTaskTimeout: sessionWorkflowTaskTimeout,
      typedSearchAttributes: [
        { key: SessionKind, value: 'sandbox' },
        { key: SessionStatus, value: 'STARTING' },
        { key: SessionDetail, value: 'CREATING' },
        { key: OwnerId, value: 'u1' },
        { key: ChatId, value: 'c0ffee00-0000-4000-8000-000000000000' },
      ],
      staticSummary: 'Sandbox of chat c0ffee00',
      staticDetails: 'owner u1',
    });
  });

  it('refuses a start that leaves out, or adds, a search attribute of the kind', () => {
    expect(() => sessionStartOptions(sandboxKind, { key: ['c'], taskQueue: 'q', status: 'CREATING', ownerId: 'u', summary: 's' })).toThrow(/\[ChatId\], not \[\]/);
    expect(() => sessionStartOptions(terminalKind, { key: ['t'], taskQueue: 'q', status: 'active', ownerId: 'u', attributes: [{ key: ChatId, value: 'c' }], summary: 's' })).toThrow(/not \[ChatId\]/);
  });

  it('leaves OwnerId out for the platform\'s own workflows', () => {
    const options = sessionStartOptions(executionPoolKind, { key: ['q', 'python'], taskQueue: 'q', status: 'RUNNING', attributes: [{ key: Runtime, value: 'python' }], summary: 'pool' });
    expect(options.workflowId).toBe('execution-pool/q/python');
    expect(options.typedSearchAttributes.map((pair) => pair.key.name)).toEqual(['SessionKind', 'SessionStatus', 'SessionDetail', 'Runtime']);
    expect(options).not.toHaveProperty('staticDetails');
  });
});
