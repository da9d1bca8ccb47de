import { z } from 'zod';
import type { ServiceRow, ServiceStore } from '../../activities/compute/serviceStore';
import { appProtocols, serviceHost, serviceUrl } from '../../domain/compute/services';

export const serviceView = z.object({
  name: z.string().describe('the app\'s name (sshd: direct access)'),
  protocol: z.enum(appProtocols),
  url: z.string().describe('where to reach it: http://127.0.0.1:<host_port>/… (jupyter\'s with ?token=), tcp://… for tcp'),
  token: z.string().nullable().describe('the service\'s token: jupyter checks it; a custom app gets it as SF_APP_TOKEN'),
  host: z.literal(serviceHost).describe('the node\'s loopback: services are reached on the node'),
  host_port: z.number(),
  container_port: z.number().describe('where the app listens in the kernel'),
  requested_port: z.number().describe('the port asked for (or the app\'s own)'),
  port_reassigned: z.boolean().describe('true when the requested port was taken in the kernel or on the node and another was given'),
  kernel: z.object({ id: z.uuid(), hostname: z.string() }),
  node: z.string(),
  created_at: z.string(),
});

/** A service as its owner sees it: the token opened from its sealed row (null when the key to open it is missing). */
export function presentService(row: ServiceRow, store: ServiceStore) {
  let token: string | null = null;
  try {
    token = store.openToken(row);
  } catch {
    token = null;
  }
  return {
    name: row.name, protocol: row.protocol,
    url: serviceUrl({ protocol: row.protocol, hostPort: row.host_port, urlPath: row.url_path, containerPort: row.container_port, token: token ?? '' }),
    token, host: serviceHost, host_port: row.host_port, container_port: row.container_port, requested_port: row.requested_port,
    port_reassigned: row.container_port !== row.requested_port || row.host_port !== row.requested_port,
    kernel: { id: row.kernel_id, hostname: row.hostname }, node: row.node, created_at: row.created_at.toISOString(),
  };
}
