import { defineQuery } from '@temporalio/workflow';

/**
 * The platform self-check: one workflow that touches every piece of real infrastructure
 * (Docker, a container, PostgreSQL, the registry) and reports each with its duration.
 */
export const checkNames = ['docker', 'container', 'database', 'registry'] as const;
export type CheckName = (typeof checkNames)[number];

export interface SelfCheckInput {
  ownerId: string;
  /** Which checks to run; all of them when absent. */
  checks?: CheckName[];
}

/** What a check activity reports when it succeeds. */
export interface CheckOutcome {
  detail: string;
  durationMs: number;
}

export interface CheckResult {
  name: CheckName;
  ok: boolean;
  durationMs: number;
  detail: string;
  error?: { type: string; message: string };
}

export type SelfCheckStatus = 'RUNNING' | 'PASSED' | 'FAILED';

export interface SelfCheckReport {
  status: SelfCheckStatus;
  startedAt: string;
  finishedAt?: string;
  checks: CheckResult[];
}

/** Self-checks are keyed by a random id: they are independent runs, never serialised. */
export function makeSelfCheckWorkflowId(id: string): string {
  return `self-check/${id}`;
}

export const selfCheckReportQuery = defineQuery<SelfCheckReport>('selfCheckReport');
