import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { defaultAbusePolicy, type AbusePolicy } from '../../domain/compute/abuse';
import type { ClusterMode, ComputeSessionInput, KernelLogLine, KernelLogs, KernelPlacement, KernelPlan, ResourceSlots } from '../../domain/compute/compute';
import type { CreateSessionParams } from '../../domain/compute/params';
import type { ImageApps } from '../../domain/compute/services';
import { placeKernels, type NodeView } from '../../domain/compute/placement';
import { firstShortSlot, formatSlot, parseCpu, parseGpu, parseMemory, scaleSlots, subtractSlots, zeroSlots } from '../../domain/compute/resources';
import { assertTransition, finalComputeStatuses, isFinalComputeStatus, type ComputeStatus } from '../../domain/compute/status';
import { vfolderVolumeName } from '../../domain/compute/vfolders';
import { domainFailure } from '../../domain/shared/errors';
import type { Config } from '../../platform/config';
import { inTransaction, lockUntilCommit } from '../../platform/database';
import type { Sealer } from '../../platform/sealer';
import { computeSecretsSealer } from './secretStore';

/** A user's resource policy: live sessions at once, and the total resources (× cluster size) they may hold. */
export interface ResourcePolicy {
  maxSessions: number;
  resources: ResourceSlots;
}

export interface ComputeStoreSettings {
  /** SESSIONFLOW_INSTANCE: part of every vfolder's volume name. */
  instance: string;
  /** The policy of a user without a row (COMPUTE_DEFAULT_*). */
  defaultPolicy: ResourcePolicy;
  /** Seals secret_env (COMPUTE_SECRETS_KEY); a sealer without a key refuses sessions that have secrets. */
  sealer: Sealer;
  /** COMPUTE_NODE_DEAD_AFTER_SECONDS: admission counts only nodes alive by this measure. */
  nodeDeadAfterSeconds: number;
  /** The abuse thresholds and action of a policy that sets none (COMPUTE_DEFAULT_ABUSE_*; domain defaults when absent). */
  defaultAbusePolicy?: AbusePolicy;
  /** COMPUTE_DEFAULT_MAX_CUSTOMIZED_IMAGES: images of their own a user without a policy row may hold (10 when absent). */
  defaultMaxCustomizedImages?: number;
}

type AbuseDefaults = 'COMPUTE_DEFAULT_ABUSE_CPU_WARNING_PERCENT' | 'COMPUTE_DEFAULT_ABUSE_CPU_PERCENT' | 'COMPUTE_DEFAULT_ABUSE_MEMORY_PERCENT' | 'COMPUTE_DEFAULT_ABUSE_ACTION';

export function computeStoreSettingsFrom(config: Pick<Config, 'SESSIONFLOW_INSTANCE' | 'COMPUTE_DEFAULT_MAX_SESSIONS' | 'COMPUTE_DEFAULT_CPU' | 'COMPUTE_DEFAULT_MEMORY' | 'COMPUTE_DEFAULT_GPU' | 'COMPUTE_SECRETS_KEY' | 'COMPUTE_NODE_DEAD_AFTER_SECONDS' | 'COMPUTE_DEFAULT_MAX_CUSTOMIZED_IMAGES' | AbuseDefaults>): ComputeStoreSettings {
  return {
    instance: config.SESSIONFLOW_INSTANCE,
    defaultPolicy: {
      maxSessions: config.COMPUTE_DEFAULT_MAX_SESSIONS,
      // The config schema has checked each amount.
      resources: { cpuMillis: parseCpu(config.COMPUTE_DEFAULT_CPU)!, memoryBytes: parseMemory(config.COMPUTE_DEFAULT_MEMORY)!, gpu: parseGpu(config.COMPUTE_DEFAULT_GPU)! },
    },
    sealer: computeSecretsSealer(config.COMPUTE_SECRETS_KEY),
    nodeDeadAfterSeconds: config.COMPUTE_NODE_DEAD_AFTER_SECONDS,
    defaultAbusePolicy: {
      cpuWarningPercent: config.COMPUTE_DEFAULT_ABUSE_CPU_WARNING_PERCENT, cpuPercent: config.COMPUTE_DEFAULT_ABUSE_CPU_PERCENT,
      memoryPercent: config.COMPUTE_DEFAULT_ABUSE_MEMORY_PERCENT, action: config.COMPUTE_DEFAULT_ABUSE_ACTION,
    },
    defaultMaxCustomizedImages: config.COMPUTE_DEFAULT_MAX_CUSTOMIZED_IMAGES,
  };
}

/** The abuse settings of a policy without its own (an absent field of a row follows it too). */
export const abuseDefaultsOf = (settings: ComputeStoreSettings): AbusePolicy => settings.defaultAbusePolicy ?? defaultAbusePolicy;


export interface AdmissionRequest {
  ownerId: string;
  params: CreateSessionParams;
  /** Given by a caller that retries: the same id admitted twice is the first admission's input. */
  sessionId?: string;
  /** Epoch ms the request arrived (max_wait counts from it, or from starts_at when later); now when absent. */
  now?: number;
}

/** `apps`: what sessions of the image may start as services (services.ts), {} for none. */
export interface ImageRow { name: string; reference: string; resources: ResourceSlots; apps: ImageApps; created_at: Date }
export interface TemplateRow { id: string; params: Record<string, unknown>; created_at: Date; updated_at: Date }
export interface ScalingGroupRow { name: string; description: string; nodes: number; created_at: Date }
export interface NodeRow {
  name: string; scaling_group: string; task_queue: string; capacity: ResourceSlots; used: ResourceSlots;
  alive: boolean; schedulable: boolean; registered_at: Date; last_heartbeat_at: Date;
}
export interface VfolderRow { owner_id: string; name: string; volume: string; created_at: Date }
export interface KernelRow { id: string; role: 'main' | 'sub'; idx: number; hostname: string; node: string | null; container_id: string | null; status: string }
export interface SessionRow {
  id: string; owner_id: string; name: string; status: ComputeStatus; status_reason: string | null; image: string; scaling_group: string;
  cluster_mode: ClusterMode; cluster_size: number; resources: ResourceSlots; priority: number; params: StoredParams;
  created_at: Date; updated_at: Date; started_at: Date | null; terminated_at: Date | null;
  /** The reconciler's last abuse warning (owner's action `warn`), null when none. */
  abuse_warning: Record<string, unknown> | null;
}
export interface SessionDetailRow extends SessionRow { kernels: KernelRow[]; dependencies: string[] }
export interface HistoryRow { seq: number; from_status: ComputeStatus | null; to_status: ComputeStatus; reason: string | null; details: Record<string, unknown> | null; at: Date }
export interface DependencyGraph {
  root: string;
  nodes: { id: string; name: string; status: ComputeStatus }[];
  /** `session` waits for `depends_on`. */
  edges: { session: string; depends_on: string }[];
}
export interface SessionToCheck {
  sessionId: string;
  status: ComputeStatus;
  scalingGroup: string;
  /** PENDING past its max_wait. */
  pendingExpired: boolean;
  kernels: { kernelId: string; hostname: string; node: string | null; taskQueue: string | null; containerId: string | null; nodeAlive: boolean }[];
}

/**
 * What a session row keeps of its request: the create params without secret values (their
 * names only), and what admission decided (the image's reference, times as epoch ms).
 */
export type StoredParams = Omit<CreateSessionParams, 'secret_env'> & {
  secret_env_names: string[];
  image_reference: string;
  starts_at_ms?: number;
  pending_deadline_ms?: number;
  secret_id?: string;
};

export interface TransitionRequest {
  sessionId: string;
  from: ComputeStatus;
  to: ComputeStatus;
  reason?: string;
  /** When it happened (the workflow's time, epoch ms or ISO); now when absent. */
  at?: number | string;
  /** What the change carries beyond its reason (an end for abuse: the figures), kept in its history row. */
  details?: Record<string, unknown>;
}

const finalList = finalComputeStatuses as readonly string[];
const gpuOf = (value: string | number) => Number(value);
const slotsOf = (row: { cpu_millis: number | string; memory_bytes: number | string; gpu: number | string }): ResourceSlots => ({
  cpuMillis: Number(row.cpu_millis), memoryBytes: Number(row.memory_bytes), gpu: gpuOf(row.gpu),
});
const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

function kernelPlans(clusterSize: number): KernelPlan[] {
  return Array.from({ length: clusterSize }, (_, i) => (i === 0
    ? { kernelId: randomUUID(), role: 'main' as const, idx: 1, hostname: 'main1' }
    : { kernelId: randomUUID(), role: 'sub' as const, idx: i, hostname: `sub${i}` }));
}

/** `python:3.11` → `python`, `lablup/tensorflow:2.10-gpu` → `tensorflow`: the stem of a generated session name. */
function imageStem(image: string): string {
  const repository = image.slice(0, image.lastIndexOf(':'));
  return (repository.split('/').pop() ?? 'session').replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 40) || 'session';
}

/** LIKE's own characters, escaped: a prefix is matched as written. */
const likePrefix = (text: string) => `${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

const sessionColumns = `s.id, s.owner_id, s.name, s.status, s.status_reason, s.image, s.scaling_group, s.cluster_mode, s.cluster_size,
  s.cpu_millis, s.memory_bytes, s.gpu, s.priority, s.params, s.created_at, s.updated_at, s.started_at, s.terminated_at, s.abuse_warning`;

interface RawSession extends Omit<SessionRow, 'resources'> { cpu_millis: number; memory_bytes: string; gpu: string }
type RawImage = { name: string; reference: string; cpu_millis: number; memory_bytes: string; gpu: string; apps: ImageApps | null; created_at: Date };
const imageOf = (row: RawImage): ImageRow => ({ name: row.name, reference: row.reference, resources: slotsOf(row), apps: row.apps ?? {}, created_at: row.created_at });
const sessionOf = ({ cpu_millis, memory_bytes, gpu, ...rest }: RawSession): SessionRow => ({ ...rest, resources: slotsOf({ cpu_millis, memory_bytes, gpu }) });

/**
 * Compute sessions' reference data and read model: every SQL statement of the kind, shared by
 * the api's routes and the control-plane activities.
 */
export function createComputeStore(pool: Pool, settings: ComputeStoreSettings) {
  const aliveSql = (param: string) => `(n.last_heartbeat_at > now() - make_interval(secs => ${param}))`;

  async function policyOf(db: Pool | PoolClient, userId: string): Promise<ResourcePolicy & { isDefault: boolean }> {
    const { rows: [row] } = await db.query<{ max_sessions: number; cpu_millis: number; memory_bytes: string; gpu: string }>('SELECT * FROM compute_resource_policies WHERE user_id = $1', [userId]);
    return row ? { maxSessions: row.max_sessions, resources: slotsOf(row), isDefault: false } : { ...settings.defaultPolicy, isDefault: true };
  }

  async function nodeViews(db: Pool | PoolClient, scalingGroup: string, deadAfterSeconds: number, options: { lock: boolean; excludeSession?: string }): Promise<NodeView[]> {
    const { rows } = await db.query<{ name: string; task_queue: string; cpu_millis: number; memory_bytes: string; gpu: string; alive: boolean; schedulable: boolean }>(
      `SELECT n.name, n.task_queue, n.cpu_millis, n.memory_bytes, n.gpu, n.schedulable, ${aliveSql('$2')} AS alive
         FROM compute_nodes n WHERE n.scaling_group = $1 ORDER BY n.name ${options.lock ? 'FOR UPDATE' : ''}`,
      [scalingGroup, deadAfterSeconds],
    );
    const used = await usedOn(db, rows.map((row) => row.name), options.excludeSession);
    return rows.map((row) => ({
      name: row.name, taskQueue: row.task_queue, capacity: slotsOf(row), used: used.get(row.name) ?? zeroSlots, alive: row.alive, schedulable: row.schedulable,
    }));
  }

  /**
   * What kernels hold on each node: every kernel with a node whose session has not ended. A
   * PENDING session whose kernels have nodes holds them too — scheduling reserved them and the
   * workflow has yet to record SCHEDULED — so two schedulings never count the same room twice.
   */
  async function usedOn(db: Pool | PoolClient, nodes: string[], excludeSession?: string): Promise<Map<string, ResourceSlots>> {
    const { rows } = await db.query<{ node: string; cpu_millis: string; memory_bytes: string; gpu: string }>(
      `SELECT k.node, sum(k.cpu_millis) AS cpu_millis, sum(k.memory_bytes) AS memory_bytes, sum(k.gpu) AS gpu
         FROM compute_kernels k JOIN compute_sessions s ON s.id = k.session_id
        WHERE k.node = ANY($1::text[]) AND s.status <> ALL($2::text[]) AND ($3::uuid IS NULL OR k.session_id <> $3)
        GROUP BY k.node`,
      [nodes, finalList, excludeSession ?? null],
    );
    return new Map(rows.map((row) => [row.node, slotsOf(row)]));
  }

  async function sessionRow(db: Pool | PoolClient, id: string, owner?: string, lock = false): Promise<SessionRow | undefined> {
    const { rows: [row] } = await db.query<RawSession>(
      `SELECT ${sessionColumns} FROM compute_sessions s WHERE s.id = $1 AND ($2::uuid IS NULL OR s.owner_id = $2) ${lock ? 'FOR UPDATE' : ''}`,
      [id, owner ?? null],
    );
    return row && sessionOf(row);
  }

  async function kernelsOf(db: Pool | PoolClient, sessionId: string): Promise<KernelRow[]> {
    const { rows } = await db.query<KernelRow>(
      `SELECT id, role, idx, hostname, node, container_id, status FROM compute_kernels WHERE session_id = $1 ORDER BY role = 'sub', idx`,
      [sessionId],
    );
    return rows;
  }

  async function dependenciesOf(db: Pool | PoolClient, sessionId: string): Promise<string[]> {
    const { rows } = await db.query<{ depends_on: string }>('SELECT depends_on FROM compute_session_dependencies WHERE session_id = $1 ORDER BY depends_on', [sessionId]);
    return rows.map((row) => row.depends_on);
  }

  function inputOf(session: SessionRow, kernels: KernelRow[], dependencies: string[]): ComputeSessionInput {
    const p = session.params;
    return {
      sessionId: session.id, ownerId: session.owner_id, name: session.name, image: session.image, imageReference: p.image_reference,
      scalingGroup: session.scaling_group, clusterMode: session.cluster_mode,
      kernels: kernels.map((k) => ({ kernelId: k.id, role: k.role, idx: k.idx, hostname: k.hostname })),
      resources: session.resources, env: p.env, secretId: p.secret_id, vfolders: p.vfolders, bootstrapScript: p.bootstrap_script,
      ...(p.bootstrap_timeout !== undefined ? { bootstrapTimeoutSeconds: p.bootstrap_timeout } : {}),
      dependencies, priority: session.priority, startsAt: p.starts_at_ms, pendingDeadline: p.pending_deadline_ms,
      idleTimeoutSeconds: p.idle_timeout, maxLifetimeSeconds: p.max_lifetime,
    };
  }

  async function ensureVfolders(db: Pool | PoolClient, ownerId: string, names: readonly string[]): Promise<VfolderRow[]> {
    if (names.length === 0) return [];
    await db.query(
      `INSERT INTO compute_vfolders (owner_id, name, volume) SELECT $1, name, volume FROM unnest($2::text[], $3::text[]) AS v(name, volume)
       ON CONFLICT (owner_id, name) DO NOTHING`,
      [ownerId, names, names.map((name) => vfolderVolumeName(settings.instance, ownerId, name))],
    );
    const { rows } = await db.query<VfolderRow>('SELECT * FROM compute_vfolders WHERE owner_id = $1 AND name = ANY($2::text[]) ORDER BY name', [ownerId, names]);
    return rows;
  }

  async function transition(db: PoolClient, request: TransitionRequest): Promise<{ changed: boolean; status: ComputeStatus }> {
    const session = await sessionRow(db, request.sessionId, undefined, true);
    if (!session) throw domainFailure('SessionNotFound', `no compute session ${request.sessionId}`);
    const { rows: [last] } = await db.query<{ seq: number; from_status: ComputeStatus | null; to_status: ComputeStatus }>(
      'SELECT seq, from_status, to_status FROM compute_status_history WHERE session_id = $1 ORDER BY seq DESC LIMIT 1', [request.sessionId],
    );
    // A retried activity: this very transition is the last one written.
    if (session.status === request.to && last?.to_status === request.to && last.from_status === request.from) return { changed: false, status: session.status };
    assertTransition(session.status, request.to);
    const at = request.at === undefined ? new Date() : new Date(request.at);
    await db.query(
      `UPDATE compute_sessions SET status = $2, status_reason = $3, updated_at = now(),
              started_at = CASE WHEN $2 = 'RUNNING' THEN coalesce(started_at, $4) ELSE started_at END,
              terminated_at = CASE WHEN $5 THEN $4 ELSE terminated_at END
        WHERE id = $1`,
      [request.sessionId, request.to, request.reason ?? null, at, isFinalComputeStatus(request.to)],
    );
    await db.query('UPDATE compute_kernels SET status = $2 WHERE session_id = $1', [request.sessionId, request.to]);
    // An ended session makes no kernel again: its sealed secret_env and cluster key pair (the row with its own id) go.
    if (isFinalComputeStatus(request.to)) await db.query('DELETE FROM compute_secrets WHERE id = ANY($1::uuid[])', [[session.id, ...(session.params.secret_id ? [session.params.secret_id] : [])]]);
    await db.query(
      'INSERT INTO compute_status_history (session_id, seq, from_status, to_status, reason, at, details) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [request.sessionId, (last?.seq ?? 0) + 1, session.status, request.to, request.reason ?? null, at, request.details ?? null],
    );
    return { changed: true, status: request.to };
  }

  return {
    // ---- images ----
    async images(): Promise<ImageRow[]> {
      const { rows } = await pool.query<RawImage>('SELECT * FROM compute_images WHERE owner_id IS NULL ORDER BY name');
      return rows.map(imageOf);
    },

    async image(name: string): Promise<ImageRow | undefined> {
      const { rows: [row] } = await pool.query<RawImage>('SELECT * FROM compute_images WHERE name = $1 AND owner_id IS NULL', [name]);
      return row && imageOf(row);
    },

    /** Creates or replaces an image; without resources (or apps) a new one gets the table's defaults (no apps) and an existing one keeps its own. */
    async upsertImage(image: { name: string; reference: string; resources?: ResourceSlots; apps?: ImageApps }): Promise<{ created: boolean }> {
      const r = image.resources;
      const { rows: [row] } = await pool.query<{ created: boolean }>(
        `INSERT INTO compute_images (name, reference, cpu_millis, memory_bytes, gpu, apps)
         VALUES ($1, $2, coalesce($3::int, 1000), coalesce($4::bigint, 268435456), coalesce($5::numeric, 0), coalesce($6::jsonb, '{}'))
         ON CONFLICT (name) WHERE owner_id IS NULL DO UPDATE SET reference = EXCLUDED.reference,
           cpu_millis = coalesce($3::int, compute_images.cpu_millis), memory_bytes = coalesce($4::bigint, compute_images.memory_bytes), gpu = coalesce($5::numeric, compute_images.gpu),
           apps = coalesce($6::jsonb, compute_images.apps, '{}')
         RETURNING (xmax = 0) AS created`,
        [image.name, image.reference, r?.cpuMillis ?? null, r?.memoryBytes ?? null, r?.gpu ?? null, image.apps === undefined ? null : JSON.stringify(image.apps)],
      );
      return { created: row!.created };
    },

    /**
     * The built-in images, written only where no row exists: an admin's own setting stays. Their
     * apps also fill a row made before images had apps (NULL), never one an admin set.
     */
    async seedImage(image: { name: string; reference: string; resources: ResourceSlots; apps: ImageApps }): Promise<void> {
      await pool.query(
        `INSERT INTO compute_images (name, reference, cpu_millis, memory_bytes, gpu, apps) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (name) WHERE owner_id IS NULL DO UPDATE SET apps = EXCLUDED.apps WHERE compute_images.apps IS NULL`,
        [image.name, image.reference, image.resources.cpuMillis, image.resources.memoryBytes, image.resources.gpu, JSON.stringify(image.apps)],
      );
    },

    async deleteImage(name: string): Promise<boolean> {
      return ((await pool.query('DELETE FROM compute_images WHERE name = $1 AND owner_id IS NULL', [name])).rowCount ?? 0) > 0;
    },

    /** A user's own images (made by converting their sessions). */
    async ownImages(ownerId: string): Promise<ImageRow[]> {
      const { rows } = await pool.query<RawImage>('SELECT * FROM compute_images WHERE owner_id = $1 ORDER BY name', [ownerId]);
      return rows.map(imageOf);
    },

    /** Removes one of a user's own images; what it was (to remove from its registry too), or undefined when they hold none of that name. */
    async deleteOwnImage(ownerId: string, name: string): Promise<{ reference: string; registry: string | null } | undefined> {
      const { rows: [row] } = await pool.query<{ reference: string; registry: string | null }>('DELETE FROM compute_images WHERE owner_id = $1 AND name = $2 RETURNING reference, registry', [ownerId, name]);
      return row;
    },

    // ---- templates ----
    async templates(): Promise<TemplateRow[]> {
      return (await pool.query<TemplateRow>('SELECT * FROM compute_templates ORDER BY id')).rows;
    },

    async template(id: string): Promise<TemplateRow | undefined> {
      return (await pool.query<TemplateRow>('SELECT * FROM compute_templates WHERE id = $1', [id])).rows[0];
    },

    async putTemplate(id: string, params: Record<string, unknown>): Promise<{ row: TemplateRow; created: boolean }> {
      const { rows: [row] } = await pool.query<TemplateRow & { created: boolean }>(
        `INSERT INTO compute_templates (id, params) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET params = EXCLUDED.params, updated_at = now()
         RETURNING *, (xmax = 0) AS created`,
        [id, params],
      );
      const { created, ...template } = row!;
      return { row: template, created };
    },

    async deleteTemplate(id: string): Promise<boolean> {
      return ((await pool.query('DELETE FROM compute_templates WHERE id = $1', [id])).rowCount ?? 0) > 0;
    },

    // ---- resource policies ----
    policy: (userId: string) => policyOf(pool, userId),

    /** Replaces the user's policy; an abuse setting left out follows the configured default. */
    async setPolicy(userId: string, policy: ResourcePolicy & { abuse?: Partial<AbusePolicy>; maxCustomizedImages?: number }): Promise<void> {
      const abuse = policy.abuse ?? {};
      await pool.query(
        `INSERT INTO compute_resource_policies (user_id, max_sessions, cpu_millis, memory_bytes, gpu, abuse_cpu_warning_percent, abuse_cpu_percent, abuse_memory_percent, abuse_action, max_customized_images)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (user_id) DO UPDATE SET max_sessions = $2, cpu_millis = $3, memory_bytes = $4, gpu = $5,
           abuse_cpu_warning_percent = $6, abuse_cpu_percent = $7, abuse_memory_percent = $8, abuse_action = $9, max_customized_images = $10, updated_at = now()`,
        [userId, policy.maxSessions, policy.resources.cpuMillis, policy.resources.memoryBytes, policy.resources.gpu,
          abuse.cpuWarningPercent ?? null, abuse.cpuPercent ?? null, abuse.memoryPercent ?? null, abuse.action ?? null, policy.maxCustomizedImages ?? null],
      );
    },

    async deletePolicy(userId: string): Promise<boolean> {
      return ((await pool.query('DELETE FROM compute_resource_policies WHERE user_id = $1', [userId])).rowCount ?? 0) > 0;
    },

    async userExists(userId: string): Promise<boolean> {
      return (await pool.query('SELECT 1 FROM users WHERE id = $1', [userId])).rowCount === 1;
    },

    /** What a user's live sessions hold now: count and total resources (× cluster size). */
    async usage(userId: string): Promise<{ sessions: number; resources: ResourceSlots }> {
      const { rows: [row] } = await pool.query<{ sessions: number; cpu_millis: string; memory_bytes: string; gpu: string }>(
        `SELECT count(*)::int AS sessions, coalesce(sum(cpu_millis * cluster_size), 0) AS cpu_millis, coalesce(sum(memory_bytes * cluster_size), 0) AS memory_bytes,
                coalesce(sum(gpu * cluster_size), 0) AS gpu
           FROM compute_sessions WHERE owner_id = $1 AND status <> ALL($2::text[])`,
        [userId, finalList],
      );
      return { sessions: row!.sessions, resources: slotsOf(row!) };
    },

    // ---- scaling groups and nodes ----
    async scalingGroups(): Promise<ScalingGroupRow[]> {
      const { rows } = await pool.query<ScalingGroupRow>(
        `SELECT g.name, g.description, g.created_at, (SELECT count(*)::int FROM compute_nodes n WHERE n.scaling_group = g.name) AS nodes
           FROM compute_scaling_groups g ORDER BY g.name`,
      );
      return rows;
    },

    async scalingGroupExists(name: string): Promise<boolean> {
      return (await pool.query('SELECT 1 FROM compute_scaling_groups WHERE name = $1', [name])).rowCount === 1;
    },

    /** false: the name is taken. */
    async createScalingGroup(name: string, description: string): Promise<boolean> {
      return ((await pool.query('INSERT INTO compute_scaling_groups (name, description) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, description])).rowCount ?? 0) > 0;
    },

    /** Refused while a node belongs to it or a live session asks for it. */
    deleteScalingGroup(name: string): Promise<'deleted' | 'missing' | 'in-use'> {
      return inTransaction(pool, async (db) => {
        const { rows: [group] } = await db.query('SELECT name FROM compute_scaling_groups WHERE name = $1 FOR UPDATE', [name]);
        if (!group) return 'missing';
        const { rows: [use] } = await db.query<{ nodes: number; sessions: number }>(
          `SELECT (SELECT count(*)::int FROM compute_nodes WHERE scaling_group = $1) AS nodes,
                  (SELECT count(*)::int FROM compute_sessions WHERE scaling_group = $1 AND status <> ALL($2::text[])) AS sessions`,
          [name, finalList],
        );
        if (use!.nodes > 0 || use!.sessions > 0) return 'in-use';
        await db.query('DELETE FROM compute_scaling_groups WHERE name = $1', [name]);
        return 'deleted';
      });
    },

    async nodes(deadAfterSeconds = settings.nodeDeadAfterSeconds): Promise<NodeRow[]> {
      const { rows } = await pool.query<{ name: string; scaling_group: string; task_queue: string; cpu_millis: number; memory_bytes: string; gpu: string; alive: boolean; schedulable: boolean; registered_at: Date; last_heartbeat_at: Date }>(
        `SELECT n.*, ${aliveSql('$1')} AS alive FROM compute_nodes n ORDER BY n.scaling_group, n.name`, [deadAfterSeconds],
      );
      const used = await usedOn(pool, rows.map((row) => row.name));
      return rows.map(({ cpu_millis, memory_bytes, gpu, ...row }) => ({ ...row, capacity: slotsOf({ cpu_millis, memory_bytes, gpu }), used: used.get(row.name) ?? zeroSlots }));
    },

    async setSchedulable(name: string, schedulable: boolean): Promise<boolean> {
      return ((await pool.query('UPDATE compute_nodes SET schedulable = $2 WHERE name = $1', [name, schedulable])).rowCount ?? 0) > 0;
    },

    // ---- vfolders ----
    async vfolders(owner: string | undefined): Promise<(VfolderRow & { mounted_by: number })[]> {
      const { rows } = await pool.query<VfolderRow & { mounted_by: number }>(
        `SELECT v.*, (SELECT count(*)::int FROM compute_sessions s WHERE s.owner_id = v.owner_id AND s.status <> ALL($2::text[]) AND s.params->'vfolders' ? v.name) AS mounted_by
           FROM compute_vfolders v WHERE ($1::uuid IS NULL OR v.owner_id = $1) ORDER BY v.owner_id, v.name`,
        [owner ?? null, finalList],
      );
      return rows;
    },

    async createVfolder(ownerId: string, name: string): Promise<{ row: VfolderRow; created: boolean }> {
      const { rowCount } = await pool.query('INSERT INTO compute_vfolders (owner_id, name, volume) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [ownerId, name, vfolderVolumeName(settings.instance, ownerId, name)]);
      const { rows: [row] } = await pool.query<VfolderRow>('SELECT * FROM compute_vfolders WHERE owner_id = $1 AND name = $2', [ownerId, name]);
      return { row: row!, created: (rowCount ?? 0) > 0 };
    },

    /**
     * Forgets a vfolder no live session mounts. Admission takes the same per-owner lock, so a
     * session cannot be admitted with a vfolder between this check and the delete.
     */
    deleteVfolder(ownerId: string, name: string): Promise<'deleted' | 'missing' | 'in-use'> {
      return inTransaction(pool, async (db) => {
        await lockUntilCommit(db, `compute-admission/${ownerId}`);
        const { rows: [use] } = await db.query<{ sessions: number }>(
          `SELECT count(*)::int AS sessions FROM compute_sessions WHERE owner_id = $1 AND status <> ALL($3::text[]) AND params->'vfolders' ? $2`,
          [ownerId, name, finalList],
        );
        if (use!.sessions > 0) return 'in-use';
        const { rowCount } = await db.query('DELETE FROM compute_vfolders WHERE owner_id = $1 AND name = $2', [ownerId, name]);
        return (rowCount ?? 0) > 0 ? 'deleted' : 'missing';
      });
    },

    ensureVfolders: (ownerId: string, names: readonly string[]) => ensureVfolders(pool, ownerId, names),

    // ---- admission ----
    /**
     * Admits a session in one transaction under its owner's lock, so concurrent creates of one
     * owner count each other: the image, the scaling group and the dependencies exist; the
     * owner's policy holds (live sessions, then cpu, memory, gpu × cluster size: QuotaExceeded
     * naming the limit, asked and free); the name is free among the owner's live sessions
     * (SessionNameTaken); some live nodes of the group, empty, could hold it
     * (InsufficientResources). Then secret_env is sealed, vfolders ensured, and the session
     * (PENDING), its kernels, dependencies and first history row are written. Nothing is
     * written when any check fails.
     */
    admitSession(request: AdmissionRequest): Promise<ComputeSessionInput> {
      const { ownerId, params } = request;
      const sessionId = request.sessionId ?? randomUUID();
      return inTransaction(pool, async (db) => {
        await lockUntilCommit(db, `compute-admission/${ownerId}`);
        const existing = await sessionRow(db, sessionId);
        if (existing) {
          if (existing.owner_id !== ownerId) throw domainFailure('SessionNotFound', `no compute session ${sessionId}`);
          return inputOf(existing, await kernelsOf(db, sessionId), await dependenciesOf(db, sessionId));
        }

        const { rows: [image] } = await db.query<{ reference: string; cpu_millis: number; memory_bytes: string; gpu: string }>(
          // The owner's own image of this name before a global one (images are scoped: imageCommit.ts).
          'SELECT * FROM compute_images WHERE name = $1 AND (owner_id IS NULL OR owner_id = $2) ORDER BY owner_id NULLS LAST LIMIT 1', [params.image, ownerId]);
        if (!image) throw domainFailure('ImageNotFound', `no image ${params.image}`, { image: params.image });
        const { rowCount: groupFound } = await db.query('SELECT 1 FROM compute_scaling_groups WHERE name = $1', [params.scaling_group]);
        if (!groupFound) {
          throw domainFailure('ValidationFailed', `no scaling group ${params.scaling_group}`, { errors: [{ field: 'body.scaling_group', message: 'no such scaling group' }] });
        }
        if (params.dependencies.length > 0) {
          const { rows } = await db.query<{ id: string }>('SELECT id FROM compute_sessions WHERE id = ANY($1::uuid[]) AND owner_id = $2', [params.dependencies, ownerId]);
          const missing = params.dependencies.find((id) => !rows.some((row) => row.id === id));
          // Another user's session is as unknown as one that never was.
          if (missing) throw domainFailure('SessionNotFound', `no compute session ${missing} to depend on`, { dependency: missing });
        }

        const defaults = slotsOf(image);
        const resources: ResourceSlots = {
          cpuMillis: params.resources.cpu ?? defaults.cpuMillis,
          memoryBytes: params.resources.memory ?? defaults.memoryBytes,
          gpu: params.resources.gpu ?? defaults.gpu,
        };
        const total = scaleSlots(resources, params.cluster_size);

        const policy = await policyOf(db, ownerId);
        const { rows: [live] } = await db.query<{ sessions: number; cpu_millis: string; memory_bytes: string; gpu: string }>(
          `SELECT count(*)::int AS sessions, coalesce(sum(cpu_millis * cluster_size), 0) AS cpu_millis, coalesce(sum(memory_bytes * cluster_size), 0) AS memory_bytes,
                  coalesce(sum(gpu * cluster_size), 0) AS gpu
             FROM compute_sessions WHERE owner_id = $1 AND status <> ALL($2::text[])`,
          [ownerId, finalList],
        );
        if (live!.sessions + 1 > policy.maxSessions) {
          throw domainFailure('QuotaExceeded', `at most ${policy.maxSessions} live sessions; ${live!.sessions} are live`, {
            limit: 'sessions', requested: 1, available: Math.max(0, policy.maxSessions - live!.sessions),
          });
        }
        const free = subtractSlots(policy.resources, slotsOf(live!));
        const short = firstShortSlot(total, free);
        if (short) {
          const available = formatSlot(short, { cpuMillis: Math.max(0, free.cpuMillis), memoryBytes: Math.max(0, free.memoryBytes), gpu: Math.max(0, free.gpu) });
          const requested = formatSlot(short, total);
          throw domainFailure('QuotaExceeded', `the session asks for ${short} ${requested}; ${available} of your quota is free`, { limit: short, requested, available });
        }

        const name = params.session_name ?? `${imageStem(params.image)}-${sessionId.slice(0, 8)}`;
        const { rowCount: nameTaken } = await db.query('SELECT 1 FROM compute_sessions WHERE owner_id = $1 AND name = $2 AND status <> ALL($3::text[])', [ownerId, name, finalList]);
        if (nameTaken) throw domainFailure('SessionNameTaken', `a live session of yours is named ${name}`, { name });

        const kernels = kernelPlans(params.cluster_size);
        const liveNodes = (await nodeViews(db, params.scaling_group, settings.nodeDeadAfterSeconds, { lock: false }))
          .filter((node) => node.alive)
          .map((node) => ({ ...node, used: zeroSlots }));
        const placement = placeKernels({ mode: params.cluster_mode, kernels, resources, nodes: liveNodes });
        if ('never' in placement) {
          throw domainFailure('InsufficientResources', `scaling group ${params.scaling_group}: ${placement.never}`, { scaling_group: params.scaling_group, reason: placement.never });
        }

        const { secret_env: secretEnv, ...plain } = params;
        let secretId: string | undefined;
        const secretNames = Object.keys(secretEnv).sort();
        if (secretNames.length > 0) {
          secretId = randomUUID();
          const sealed = settings.sealer.seal(JSON.stringify(secretEnv), secretId);
          await db.query('INSERT INTO compute_secrets (id, owner_id, sealed) VALUES ($1, $2, $3)', [secretId, ownerId, sealed]);
        }
        await ensureVfolders(db, ownerId, params.vfolders);

        const now = request.now ?? Date.now();
        const startsAtMs = params.starts_at === undefined ? undefined : Date.parse(params.starts_at);
        const waitFrom = Math.max(now, startsAtMs ?? now);
        const stored: StoredParams = {
          ...plain, session_name: name, secret_env_names: secretNames, image_reference: image.reference,
          ...(startsAtMs !== undefined ? { starts_at_ms: startsAtMs } : {}),
          ...(params.max_wait !== undefined ? { pending_deadline_ms: waitFrom + params.max_wait * 1000 } : {}),
          ...(secretId ? { secret_id: secretId } : {}),
        };
        try {
          await db.query(
            `INSERT INTO compute_sessions (id, owner_id, name, status, image, scaling_group, cluster_mode, cluster_size, cpu_millis, memory_bytes, gpu, priority, params, secret_id, created_at)
             VALUES ($1, $2, $3, 'PENDING', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
            [sessionId, ownerId, name, params.image, params.scaling_group, params.cluster_mode, params.cluster_size,
              resources.cpuMillis, resources.memoryBytes, resources.gpu, params.priority, stored, secretId ?? null, new Date(now)],
          );
        } catch (err) {
          if (isUniqueViolation(err)) throw domainFailure('SessionNameTaken', `a live session of yours is named ${name}`, { name });
          throw err;
        }
        await db.query(
          `INSERT INTO compute_kernels (id, session_id, role, idx, hostname, status, cpu_millis, memory_bytes, gpu)
           SELECT k.id, $1, k.role, k.idx, k.hostname, 'PENDING', $6, $7, $8 FROM unnest($2::uuid[], $3::text[], $4::int[], $5::text[]) AS k(id, role, idx, hostname)`,
          [sessionId, kernels.map((k) => k.kernelId), kernels.map((k) => k.role), kernels.map((k) => k.idx), kernels.map((k) => k.hostname), resources.cpuMillis, resources.memoryBytes, resources.gpu],
        );
        if (params.dependencies.length > 0) {
          await db.query('INSERT INTO compute_session_dependencies (session_id, depends_on) SELECT $1, unnest($2::uuid[])', [sessionId, params.dependencies]);
        }
        await db.query(`INSERT INTO compute_status_history (session_id, seq, from_status, to_status, reason, at) VALUES ($1, 1, NULL, 'PENDING', 'admitted', $2)`, [sessionId, new Date(now)]);

        const session = (await sessionRow(db, sessionId))!;
        return inputOf(session, await kernelsOf(db, sessionId), [...params.dependencies].sort());
      });
    },

    /** The workflow input of an admitted session, rebuilt from its row (e.g. to start its workflow again). */
    async sessionInput(sessionId: string): Promise<ComputeSessionInput | undefined> {
      const session = await sessionRow(pool, sessionId);
      return session && inputOf(session, await kernelsOf(pool, sessionId), await dependenciesOf(pool, sessionId));
    },

    /** Its workflow could not be started: the session ends in ERROR with the reason (nothing else was made). */
    async markStartFailed(sessionId: string, reason: string): Promise<void> {
      await inTransaction(pool, async (db) => {
        const session = await sessionRow(db, sessionId, undefined, true);
        if (!session || isFinalComputeStatus(session.status)) return;
        await transition(db, { sessionId, from: session.status, to: 'ERROR', reason });
      });
    },

    // ---- the workflow's writes ----
    /**
     * Picks nodes for a PENDING session's kernels and reserves them (each kernel gets its node),
     * in one transaction holding the scaling group's node rows, so two sessions never count the
     * same free room. A session whose kernels have nodes already gets them back (a retried
     * activity). `wait` when the room is not there now; InsufficientResources when no node of
     * the group, empty and alive or not, could ever hold it.
     */
    scheduleSession(sessionId: string, options: { deadAfterSeconds?: number } = {}): Promise<{ placed: KernelPlacement[] } | { wait: string }> {
      return inTransaction(pool, async (db) => {
        const session = await sessionRow(db, sessionId, undefined, true);
        if (!session) throw domainFailure('SessionNotFound', `no compute session ${sessionId}`);
        const kernels = await kernelsOf(db, sessionId);
        if (kernels.every((k) => k.node !== null)) {
          const { rows } = await db.query<{ name: string; task_queue: string }>('SELECT name, task_queue FROM compute_nodes WHERE name = ANY($1::text[])', [kernels.map((k) => k.node)]);
          const queues = new Map(rows.map((row) => [row.name, row.task_queue]));
          return { placed: kernels.map((k) => ({ kernelId: k.id, role: k.role, idx: k.idx, hostname: k.hostname, node: k.node!, taskQueue: queues.get(k.node!)! })) };
        }
        if (session.status !== 'PENDING') throw domainFailure('InvalidSessionState', `the session is ${session.status}: only a PENDING session is scheduled`, { current_status: session.status });
        const nodes = await nodeViews(db, session.scaling_group, options.deadAfterSeconds ?? settings.nodeDeadAfterSeconds, { lock: true, excludeSession: sessionId });
        const placement = placeKernels({
          mode: session.cluster_mode, resources: session.resources, nodes,
          kernels: kernels.map((k) => ({ kernelId: k.id, role: k.role, idx: k.idx, hostname: k.hostname })),
        });
        if ('never' in placement) {
          throw domainFailure('InsufficientResources', `scaling group ${session.scaling_group}: ${placement.never}`, { scaling_group: session.scaling_group, reason: placement.never });
        }
        if ('wait' in placement) return placement;
        await db.query(
          'UPDATE compute_kernels k SET node = p.node FROM unnest($1::uuid[], $2::text[]) AS p(id, node) WHERE k.id = p.id',
          [placement.placed.map((k) => k.kernelId), placement.placed.map((k) => k.node)],
        );
        return placement;
      });
    },

    /**
     * A status change: the session's status and reason (started_at on the first RUNNING,
     * terminated_at on a final status), its kernels' status and a history row. The map is
     * checked against the row's current status; the same transition again (a retried
     * activity) writes nothing.
     */
    recordTransition(request: TransitionRequest): Promise<{ changed: boolean; status: ComputeStatus }> {
      return inTransaction(pool, (db) => transition(db, request));
    },

    async setKernelContainer(kernelId: string, containerId: string | null): Promise<void> {
      await pool.query('UPDATE compute_kernels SET container_id = $2 WHERE id = $1', [kernelId, containerId]);
    },

    /** The last logs of the session's kernels, kept at its end; a retry writes the same rows again. */
    async storeKernelLogs(sessionId: string, logs: KernelLogs[]): Promise<void> {
      if (logs.length === 0) return;
      await pool.query(
        `INSERT INTO compute_kernel_logs (kernel_id, session_id, logs, truncated)
         SELECT kernel_id, $1, logs, truncated FROM unnest($2::uuid[], $3::text[], $4::boolean[]) AS t(kernel_id, logs, truncated)
         ON CONFLICT (kernel_id) DO UPDATE SET logs = EXCLUDED.logs, truncated = EXCLUDED.truncated, stored_at = now()`,
        [sessionId, logs.map((k) => k.kernelId), logs.map((k) => JSON.stringify(k.lines)), logs.map((k) => k.truncated)],
      );
    },

    /** Back to PENDING: the kernels give up their nodes (and any container id). */
    async clearPlacement(sessionId: string): Promise<void> {
      await pool.query('UPDATE compute_kernels SET node = NULL, container_id = NULL WHERE session_id = $1', [sessionId]);
    },

    /** ready: every dependency TERMINATED; failed: the first that ended otherwise (ERROR, CANCELLED). */
    async dependencyOutcome(sessionId: string): Promise<'ready' | 'waiting' | { failed: string; status: ComputeStatus }> {
      const { rows } = await pool.query<{ id: string; status: ComputeStatus }>(
        `SELECT s.id, s.status FROM compute_session_dependencies d JOIN compute_sessions s ON s.id = d.depends_on WHERE d.session_id = $1 ORDER BY s.id`,
        [sessionId],
      );
      const failed = rows.find((row) => row.status === 'ERROR' || row.status === 'CANCELLED');
      if (failed) return { failed: failed.id, status: failed.status };
      return rows.every((row) => row.status === 'TERMINATED') ? 'ready' : 'waiting';
    },

    /** Who should look again when this session ends: its PENDING dependents and the PENDING sessions of its scaling group, by priority. */
    async sessionsToWake(sessionId: string): Promise<string[]> {
      const { rows } = await pool.query<{ id: string }>(
        `SELECT s.id FROM compute_sessions s
          WHERE s.status = 'PENDING' AND s.id <> $1
            AND (s.id IN (SELECT session_id FROM compute_session_dependencies WHERE depends_on = $1)
                 OR s.scaling_group = (SELECT scaling_group FROM compute_sessions WHERE id = $1))
          ORDER BY s.priority DESC, s.created_at, s.id`,
        [sessionId],
      );
      return rows.map((row) => row.id);
    },

    /** Any of name, priority and idle timeout (0: off). */
    async modifySession(sessionId: string, change: { name?: string; priority?: number; idleTimeoutSeconds?: number }): Promise<void> {
      try {
        await pool.query(
          `UPDATE compute_sessions SET name = coalesce($2, name), priority = coalesce($3, priority), updated_at = now(),
                  params = CASE WHEN $4::int IS NULL THEN params WHEN $4::int = 0 THEN params - 'idle_timeout' ELSE jsonb_set(params, '{idle_timeout}', to_jsonb($4::int)) END
            WHERE id = $1`,
          [sessionId, change.name ?? null, change.priority ?? null, change.idleTimeoutSeconds ?? null],
        );
      } catch (err) {
        if (isUniqueViolation(err)) throw domainFailure('SessionNameTaken', `a live session of yours is named ${change.name}`, { name: change.name });
        throw err;
      }
    },

    // ---- reads ----
    async session(id: string, owner: string | undefined): Promise<SessionDetailRow | undefined> {
      const session = await sessionRow(pool, id, owner);
      return session && { ...session, kernels: await kernelsOf(pool, id), dependencies: await dependenciesOf(pool, id) };
    },

    /** The logs kept at a session's end, by kernel id (a kernel without a row had none kept). */
    async storedKernelLogs(sessionId: string): Promise<Map<string, { lines: KernelLogLine[]; truncated: boolean }>> {
      const { rows } = await pool.query<{ kernel_id: string; logs: string; truncated: boolean }>('SELECT kernel_id, logs, truncated FROM compute_kernel_logs WHERE session_id = $1', [sessionId]);
      return new Map(rows.map((row) => [row.kernel_id, { lines: JSON.parse(row.logs) as KernelLogLine[], truncated: row.truncated }]));
    },

    /** Match sessions: `q` an id prefix or a name prefix; newest first. */
    async listSessions(query: { owner: string | undefined; q?: string; status?: ComputeStatus; page: number; pageSize: number }): Promise<{ rows: SessionRow[]; total: number }> {
      const where = `($1::uuid IS NULL OR s.owner_id = $1) AND ($2::text IS NULL OR s.id::text LIKE lower($2) OR s.name LIKE $2) AND ($3::text IS NULL OR s.status = $3)`;
      const args = [query.owner ?? null, query.q ? likePrefix(query.q) : null, query.status ?? null];
      const [{ rows }, { rows: [count] }] = await Promise.all([
        pool.query<RawSession>(`SELECT ${sessionColumns} FROM compute_sessions s WHERE ${where} ORDER BY s.created_at DESC, s.id LIMIT $4 OFFSET $5`, [...args, query.pageSize, (query.page - 1) * query.pageSize]),
        pool.query<{ total: number }>(`SELECT count(*)::int AS total FROM compute_sessions s WHERE ${where}`, args),
      ]);
      return { rows: rows.map(sessionOf), total: count!.total };
    },

    /** undefined: no such session (for this owner). */
    async statusHistory(id: string, owner: string | undefined): Promise<HistoryRow[] | undefined> {
      if (!(await sessionRow(pool, id, owner))) return undefined;
      const { rows } = await pool.query<HistoryRow>('SELECT seq, from_status, to_status, reason, details, at FROM compute_status_history WHERE session_id = $1 ORDER BY seq', [id]);
      return rows;
    },

    /** What the session waits for, recursively (Backend.AI's graph): every session reached and every edge. */
    async dependencyGraph(id: string, owner: string | undefined): Promise<DependencyGraph | undefined> {
      if (!(await sessionRow(pool, id, owner))) return undefined;
      // Breadth first: the nodes come in the order they are reached (the root, what it waits
      // for, what those wait for…), whatever their ids.
      const { rows } = await pool.query<{ session: string; depends_on: string; depth: number }>(
        `WITH RECURSIVE reach(session_id, depends_on, depth) AS (
           SELECT session_id, depends_on, 1 FROM compute_session_dependencies WHERE session_id = $1
           UNION
           SELECT d.session_id, d.depends_on, r.depth + 1 FROM compute_session_dependencies d JOIN reach r ON d.session_id = r.depends_on WHERE r.depth < 64)
         SELECT session_id AS session, depends_on, min(depth) AS depth FROM reach GROUP BY session_id, depends_on ORDER BY min(depth), session_id, depends_on`,
        [id],
      );
      const edges = rows.map(({ session, depends_on }) => ({ session, depends_on }));
      const ids = [id, ...new Set(edges.map((edge) => edge.depends_on))];
      const { rows: nodes } = await pool.query<{ id: string; name: string; status: ComputeStatus }>('SELECT id, name, status FROM compute_sessions WHERE id = ANY($1::uuid[])', [ids]);
      nodes.sort((a, b) => ids.indexOf(a.id) - ids.indexOf(b.id));
      return { root: id, nodes, edges };
    },

    /** The live sessions that depend on this one, directly or through others: the farthest first, so a recursive destroy ends each before what it waits on. */
    async dependentsOf(id: string): Promise<string[]> {
      const { rows } = await pool.query<{ id: string }>(
        `WITH RECURSIVE reach(session_id, depth) AS (
           SELECT session_id, 1 FROM compute_session_dependencies WHERE depends_on = $1
           UNION
           SELECT d.session_id, r.depth + 1 FROM compute_session_dependencies d JOIN reach r ON d.depends_on = r.session_id WHERE r.depth < 64)
         SELECT r.session_id AS id FROM reach r JOIN compute_sessions s ON s.id = r.session_id
          WHERE s.status <> ALL($2::text[])
          GROUP BY r.session_id ORDER BY max(r.depth) DESC, r.session_id`,
        [id, finalComputeStatuses],
      );
      return rows.map((row) => row.id);
    },

    /** For the reconciler: every live session with its kernels' containers and their nodes' liveness, and whether a PENDING one is past its max_wait. */
    async sessionsToCheck(options: { deadAfterSeconds?: number } = {}): Promise<SessionToCheck[]> {
      const { rows } = await pool.query<{
        id: string; status: ComputeStatus; scaling_group: string; pending_expired: boolean;
        kernel_id: string | null; hostname: string | null; node: string | null; task_queue: string | null; container_id: string | null; node_alive: boolean | null;
      }>(
        `SELECT s.id, s.status, s.scaling_group,
                (s.status = 'PENDING' AND (s.params->>'pending_deadline_ms')::bigint < (extract(epoch FROM now()) * 1000)::bigint) IS TRUE AS pending_expired,
                k.id AS kernel_id, k.hostname, k.node, n.task_queue, k.container_id, ${aliveSql('$2')} AS node_alive
           FROM compute_sessions s
           LEFT JOIN compute_kernels k ON k.session_id = s.id
           LEFT JOIN compute_nodes n ON n.name = k.node
          WHERE s.status <> ALL($1::text[])
          ORDER BY s.created_at, s.id, k.role = 'sub', k.idx`,
        [finalList, options.deadAfterSeconds ?? settings.nodeDeadAfterSeconds],
      );
      const sessions = new Map<string, SessionToCheck>();
      for (const row of rows) {
        let session = sessions.get(row.id);
        if (!session) sessions.set(row.id, (session = { sessionId: row.id, status: row.status, scalingGroup: row.scaling_group, pendingExpired: row.pending_expired, kernels: [] }));
        if (row.kernel_id) {
          session.kernels.push({ kernelId: row.kernel_id, hostname: row.hostname!, node: row.node, taskQueue: row.task_queue, containerId: row.container_id, nodeAlive: Boolean(row.node_alive) });
        }
      }
      return [...sessions.values()];
    },
  };
}

export type ComputeStore = ReturnType<typeof createComputeStore>;
