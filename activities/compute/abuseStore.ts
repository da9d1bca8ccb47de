import type { Pool, PoolClient } from 'pg';
import {
  abusingLooksAfter,
  abusingLooksToAct,
  describeAbuse,
  type AbuseAction,
  type AbuseFinding,
  type AbusePolicy,
  type AbuseVerdict,
  type KernelAbuseFigures,
  type KernelAbuseRecord,
  type KernelUsage,
} from '../../domain/compute/abuse';
import { judgeKernelUsage } from '../../domain/compute/abuseVerdict';
import { inTransaction, lockUntilCommit } from '../../platform/database';
import { abuseDefaultsOf, type ComputeStoreSettings } from './store';

/** One kernel's use as a node measured it at one look. */
export interface KernelReading {
  kernelId: string;
  usage: KernelUsage;
}

export interface AbuseLookOutcome {
  /** Kernels judged (those of sessions still RUNNING). */
  kernels: number;
  abusing: number;
  /** Sessions given a warning at this look (their owner's action is `warn`). */
  warned: string[];
  /** Sessions to end for abuse (their owner's action is `terminate`), with what was found. */
  terminate: { sessionId: string; finding: AbuseFinding }[];
}

export interface KernelLastLook {
  verdict: AbuseVerdict;
  abusing_looks: number;
  at: Date;
}

/** A kernel judged at one look: its verdict and figures, and how many consecutive looks found it abusing. */
interface JudgedKernel {
  kernelId: string;
  hostname: string;
  sessionId: string;
  action: AbuseAction;
  figures: KernelAbuseFigures;
  looks: number;
}

interface PolicyColumns {
  abuse_cpu_warning_percent: string | null;
  abuse_cpu_percent: string | null;
  abuse_memory_percent: string | null;
  abuse_action: AbuseAction | null;
}

/**
 * Abuse of kernels' shares in PostgreSQL: each user's thresholds and action (columns of the
 * resource policy, NULL following the configured default), and the reconciler's last look at
 * every kernel, so two consecutive looks are recognised across restarts of anything.
 */
export function createAbuseStore(pool: Pool, settings: ComputeStoreSettings) {
  const defaults = abuseDefaultsOf(settings);
  const policyOf = (row: Partial<PolicyColumns> | undefined): AbusePolicy => ({
    cpuWarningPercent: row?.abuse_cpu_warning_percent != null ? Number(row.abuse_cpu_warning_percent) : defaults.cpuWarningPercent,
    cpuPercent: row?.abuse_cpu_percent != null ? Number(row.abuse_cpu_percent) : defaults.cpuPercent,
    memoryPercent: row?.abuse_memory_percent != null ? Number(row.abuse_memory_percent) : defaults.memoryPercent,
    action: row?.abuse_action ?? defaults.action,
  });

  return {
    /** A user's abuse thresholds and action, each its own or the configured default. */
    async policy(userId: string): Promise<AbusePolicy> {
      const { rows: [row] } = await pool.query<PolicyColumns>(
        'SELECT abuse_cpu_warning_percent, abuse_cpu_percent, abuse_memory_percent, abuse_action FROM compute_resource_policies WHERE user_id = $1', [userId],
      );
      return policyOf(row);
    },

    /** The reconciler's last look at each kernel of a session, by kernel id. */
    async lastLooks(sessionId: string): Promise<Map<string, KernelLastLook>> {
      const { rows } = await pool.query<{ kernel_id: string; verdict: AbuseVerdict; abusing_looks: number; looked_at: Date }>(
        'SELECT kernel_id, verdict, abusing_looks, looked_at FROM compute_kernel_abuse WHERE session_id = $1', [sessionId],
      );
      return new Map(rows.map((row) => [row.kernel_id, { verdict: row.verdict, abusing_looks: row.abusing_looks, at: row.looked_at }]));
    },

    /**
     * One look of the reconciler, in one transaction (looks are serialised): every kernel of a
     * session still RUNNING judged against its owner's policy, its verdict and count of
     * consecutive abusing looks kept. A session with a kernel abusing at `abusingLooksToAct`
     * consecutive looks is acted on: `warn` records the warning on the session here;
     * `terminate` is handed back for its workflow to end it. The same look applied again (a
     * retried activity, same `lookId`) counts once and answers the same.
     */
    recordLook(lookId: string, readings: KernelReading[]): Promise<AbuseLookOutcome> {
      return inTransaction(pool, async (db) => {
        await lockUntilCommit(db, 'compute-abuse-look');
        const judged = await judge(db, lookId, readings);
        await keep(db, lookId, judged);
        const findings = findingsOf(judged);
        const warned: string[] = [];
        const terminate: AbuseLookOutcome['terminate'] = [];
        for (const { sessionId, finding } of findings) {
          if (finding.action === 'terminate') {
            terminate.push({ sessionId, finding });
            continue;
          }
          const warning = { at: new Date().toISOString(), look_id: lookId, ...finding, message: describeAbuse(finding) };
          await db.query(`UPDATE compute_sessions SET abuse_warning = $2, updated_at = now() WHERE id = $1 AND status = 'RUNNING'`, [sessionId, warning]);
          warned.push(sessionId);
        }
        return { kernels: judged.length, abusing: judged.filter((k) => k.figures.status === 'abusing').length, warned, terminate };
      });
    },
  };

  async function judge(db: PoolClient, lookId: string, readings: KernelReading[]): Promise<JudgedKernel[]> {
    if (readings.length === 0) return [];
    const { rows } = await db.query<PolicyColumns & {
      id: string; hostname: string; session_id: string; cpu_millis: number; memory_bytes: string; abusing_looks: number | null; look_id: string | null;
    }>(
      `SELECT k.id, k.hostname, k.session_id, k.cpu_millis, k.memory_bytes,
              p.abuse_cpu_warning_percent, p.abuse_cpu_percent, p.abuse_memory_percent, p.abuse_action, a.abusing_looks, a.look_id
         FROM compute_kernels k
         JOIN compute_sessions s ON s.id = k.session_id
         LEFT JOIN compute_resource_policies p ON p.user_id = s.owner_id
         LEFT JOIN compute_kernel_abuse a ON a.kernel_id = k.id
        WHERE k.id = ANY($1::uuid[]) AND s.status = 'RUNNING'
        ORDER BY k.session_id, k.role = 'sub', k.idx`,
      [readings.map((reading) => reading.kernelId)],
    );
    const usageOf = new Map(readings.map((reading) => [reading.kernelId, reading.usage]));
    return rows.map((row) => {
      const policy = policyOf(row);
      const figures = judgeKernelUsage(usageOf.get(row.id)!, { cpuMillis: row.cpu_millis, memoryBytes: Number(row.memory_bytes) }, policy);
      const previous = row.look_id === null ? undefined : { looks: row.abusing_looks ?? 0, lookId: row.look_id };
      return { kernelId: row.id, hostname: row.hostname, sessionId: row.session_id, action: policy.action, figures, looks: abusingLooksAfter(previous, figures.status, lookId) };
    });
  }

  async function keep(db: PoolClient, lookId: string, judged: JudgedKernel[]): Promise<void> {
    if (judged.length === 0) return;
    await db.query(
      `INSERT INTO compute_kernel_abuse (kernel_id, session_id, verdict, abusing_looks, figures, look_id, looked_at)
       SELECT kernel_id, session_id, verdict, looks, figures::jsonb, $6, now()
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::text[]) AS t(kernel_id, session_id, verdict, looks, figures)
       ON CONFLICT (kernel_id) DO UPDATE SET verdict = EXCLUDED.verdict, abusing_looks = EXCLUDED.abusing_looks, figures = EXCLUDED.figures,
         look_id = EXCLUDED.look_id, looked_at = EXCLUDED.looked_at`,
      [judged.map((k) => k.kernelId), judged.map((k) => k.sessionId), judged.map((k) => k.figures.status), judged.map((k) => k.looks),
        judged.map((k) => JSON.stringify(k.figures)), lookId],
    );
  }
}

export type AbuseStore = ReturnType<typeof createAbuseStore>;

/** The sessions to act on: those with kernels abusing at enough consecutive looks, with those kernels' figures. */
function findingsOf(judged: JudgedKernel[]): { sessionId: string; finding: AbuseFinding }[] {
  const bySession = new Map<string, { action: AbuseAction; looks: number; kernels: KernelAbuseRecord[] }>();
  for (const kernel of judged) {
    if (kernel.looks < abusingLooksToAct) continue;
    const finding = bySession.get(kernel.sessionId) ?? { action: kernel.action, looks: 0, kernels: [] };
    finding.looks = Math.max(finding.looks, kernel.looks);
    finding.kernels.push({ kernel_id: kernel.kernelId, hostname: kernel.hostname, ...kernel.figures });
    bySession.set(kernel.sessionId, finding);
  }
  return [...bySession].map(([sessionId, finding]) => ({ sessionId, finding }));
}
