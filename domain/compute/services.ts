import { defineUpdate } from '@temporalio/workflow';

/**
 * In-session services (seed 000, actions 17, 18 and 24): an app of the session's image started in
 * its main kernel, reached through a TCP listener on the node's loopback that relays into the
 * kernel's own loopback (kernels have no network). Pure: the workflow and the api import it.
 */

export const appProtocols = ['http', 'tcp'] as const;
export type AppProtocol = (typeof appProtocols)[number];

/**
 * One app an image offers, as stored in compute_images.apps and taken by the admin routes.
 * `command` is argv; `{port}` and `{token}` in it become the service's container port and token
 * (the app also gets them as SF_APP_PORT and SF_APP_TOKEN). `url_path` (http only) is appended
 * to the service's address, with the same placeholders.
 */
export interface AppDefinition {
  command: string[];
  port: number;
  protocol: AppProtocol;
  url_path: string;
}

export type ImageApps = Record<string, AppDefinition>;

/** What a kernel image made by images/kernel-python offers when an admin has not said otherwise. */
export const defaultKernelApps: ImageApps = {
  jupyter: {
    // The token is checked by the notebook server itself; port_retries=0: the port chosen is the port used.
    command: [
      'jupyter-notebook', '--no-browser', '--ip=127.0.0.1', '--port={port}', '--NotebookApp.port_retries=0',
      '--NotebookApp.token={token}', '--NotebookApp.password=', '--notebook-dir=/home/work',
    ],
    port: 8888,
    protocol: 'http',
    url_path: '/?token={token}',
  },
  'custom-web-app': {
    command: ['python3', '-m', 'http.server', '{port}', '--bind', '127.0.0.1'],
    port: 8080,
    protocol: 'http',
    url_path: '/',
  },
};

/** The service of direct access: the main kernel's sshd (activities/compute/kernelInit.ts), a name no app may take. */
export const directAccessServiceName = 'sshd';

export interface StartServiceRequest {
  name: string;
  app: AppDefinition;
  /** The container port asked for (the request's port or args.port, else the app's); another is chosen when it is taken. */
  port: number;
}

/** A service as the workflow answers it: no token (it stays sealed in PostgreSQL, out of the history). */
export interface ServiceRecord {
  name: string;
  kernelId: string;
  node: string;
  protocol: AppProtocol;
  requestedPort: number;
  containerPort: number;
  hostPort: number;
}

/** Starts an app of the image in the main kernel, or answers the running service of that name (RUNNING only). */
export const startServiceUpdate = defineUpdate<ServiceRecord, [StartServiceRequest]>('startService');
/** Stops a service and closes its listener; `stopped` is false when there was none (a retried call). */
export const shutdownServiceUpdate = defineUpdate<{ name: string; stopped: boolean }, [{ name: string }]>('shutdownService');
/** The main kernel's sshd, with the session's key pair, reachable as a service (RUNNING only). */
export const directAccessUpdate = defineUpdate<ServiceRecord, []>('directAccess');

/** Every service listens on the node's loopback only: whoever reaches it there is on the node. */
export const serviceHost = '127.0.0.1';

/** `{port}` and `{token}` filled in (every occurrence). */
export function fillPlaceholders(text: string, values: { port: number; token: string }): string {
  return text.replaceAll('{port}', String(values.port)).replaceAll('{token}', values.token);
}

/** Where a client reaches the service: http://127.0.0.1:<host port><url path> for http, tcp://127.0.0.1:<host port> else. */
export function serviceUrl({ protocol, hostPort, urlPath, containerPort, token }: { protocol: AppProtocol; hostPort: number; urlPath: string; containerPort: number; token: string }): string {
  if (protocol === 'tcp') return `tcp://${serviceHost}:${hostPort}`;
  return `http://${serviceHost}:${hostPort}${fillPlaceholders(urlPath || '/', { port: containerPort, token })}`;
}

/** A log's `token=…` values (query strings, "token: …" lines) replaced by `<hidden>`. */
export function withoutTokens(text: string): string {
  return text.replace(/(token[=:]\s*)[^\s&"']+/gi, '$1<hidden>');
}
