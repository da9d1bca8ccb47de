import type Docker from 'dockerode';
import type { Pool } from 'pg';
import { finalComputeStatuses } from '../../domain/compute/status';
import { ignoreNotFound, instanceLabel, kindLabel, managedLabel } from '../shared/docker';
import type { Sealer } from '../../platform/sealer';
import { computeSessionLabel } from './node';
import { serviceKey, type ServiceProxy } from './serviceProxy';
import { openServiceListener } from './services';
import { createServiceStore } from './serviceStore';

/**
 * A node's own clean-up, run by its worker at start and now and then after: removes the kernels
 * (and cluster networks) of this deployment whose session has ended, or is unknown to the
 * database for more than `unknownGraceSeconds` (made by hand, or by a test). A session whose
 * workflow could not reach this node to remove them (it was down: the session ended ERROR)
 * leaves them here; a live session's kernels are never touched. Returns how many went.
 */
export async function sweepEndedSessionKernels({ docker, pool, instance, unknownGraceSeconds = 600 }: { docker: Docker; pool: Pool; instance: string; unknownGraceSeconds?: number }): Promise<number> {
  const filters = { label: [`${managedLabel}=true`, `${instanceLabel}=${instance}`, `${kindLabel}=compute`, computeSessionLabel] };
  const [containers, networks] = await Promise.all([docker.listContainers({ all: true, filters }), docker.listNetworks({ filters })]);
  const sessionOf = (labels: Record<string, string> | undefined) => labels?.[computeSessionLabel] ?? '';
  const sessions = [...new Set([...containers.map((c) => sessionOf(c.Labels)), ...networks.map((n) => sessionOf(n.Labels))])].filter((id) => /^[0-9a-f-]{36}$/.test(id));
  if (sessions.length === 0) return 0;
  const { rows } = await pool.query<{ id: string; live: boolean }>('SELECT id, status <> ALL($2::text[]) AS live FROM compute_sessions WHERE id = ANY($1::uuid[])', [sessions, finalComputeStatuses]);
  const known = new Map(rows.map((row) => [row.id, row.live]));
  const graceEnds = Date.now() / 1000 - unknownGraceSeconds;
  const goes = (labels: Record<string, string> | undefined, createdSeconds: number) => {
    const live = known.get(sessionOf(labels));
    return live === false || (live === undefined && createdSeconds < graceEnds);
  };
  const ended = containers.filter((c) => goes(c.Labels, c.Created));
  await Promise.all(ended.map((c) => ignoreNotFound(docker.getContainer(c.Id).remove({ force: true })).catch(() => undefined)));
  // Networks after their containers (Docker refuses to remove one in use); one that will not go now goes next time.
  await Promise.all(networks.filter((n) => goes(n.Labels, Date.parse(n.Created) / 1000)).map((n) => ignoreNotFound(docker.getNetwork(n.Id).remove()).catch(() => undefined)));
  return ended.length;
}

/**
 * The node's service listeners as compute_services says they should be, run by its worker at
 * start and with each sweep: a listener for every service of a live session on this node (a
 * worker that starts again opens them anew), none for a service whose session ended or that is
 * gone (its row of an ended session goes too). Returns what changed.
 */
export async function sweepServiceListeners({ pool, sealer, proxy, node }: { pool: Pool; sealer: Sealer; proxy: ServiceProxy; node: string }): Promise<{ opened: string[]; closed: string[]; moved: string[]; failed: string[] }> {
  const store = createServiceStore(pool, sealer);
  const rows = await store.nodeServices(node);
  const keep = rows.filter((row) => row.live && row.container_id);
  const kept = new Set(keep.map((row) => serviceKey(row.session_id, row.name)));
  const closed = proxy.keys().filter((key) => !kept.has(key));
  await Promise.all(closed.map((key) => proxy.close(key)));
  await Promise.all(rows.filter((row) => !row.live).map((row) => store.remove(row.session_id, row.name)));
  const opened: string[] = [];
  const moved: string[] = [];
  const failed: string[] = [];
  for (const row of keep) {
    const key = serviceKey(row.session_id, row.name);
    if (proxy.portOf(key) === row.host_port) continue;
    try {
      const now = await openServiceListener(store, proxy, row, row.container_id!);
      (now.host_port === row.host_port ? opened : moved).push(key);
    } catch {
      // Tried again at the next sweep.
      failed.push(key);
    }
  }
  return { opened, closed, moved, failed };
}
