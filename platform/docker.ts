import Docker from 'dockerode';

export function createDocker(socketPath: string): Docker {
  return new Docker({ socketPath });
}

export type { default as Docker } from 'dockerode';
