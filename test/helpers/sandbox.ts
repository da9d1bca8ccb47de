import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { instanceLabel } from '../../activities/shared/docker';
import { chatIdLabel } from '../../activities/sandbox/sandbox';
import { findPrincipal } from '../../api/platform/auth';
import { makeSandboxWorkflowId } from '../../domain/sandbox/sandbox';

export const newChatId = (): string => randomUUID();

/** A test file's chats: `next()` makes a chat id and remembers it, for discardChats(…, ids) at the end. */
export function trackedChats(): { ids: Set<string>; next: () => string } {
  const ids = new Set<string>();
  return {
    ids,
    next() {
      const id = newChatId();
      ids.add(id);
      return id;
    },
  };
}

/** This run's sandbox containers of one chat, running or not. */
export async function containersOfChat(docker: Docker, instance: string, chatId: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${instanceLabel}=${instance}`, `${chatIdLabel}=${chatId}`] } });
}

export interface RecordedEvent {
  event: string;
  session_id: string;
  container_id: string;
  error: string | null;
}

/** The chat's sandbox events in the order they happened. */
export async function eventsOfChat(pool: Pool, chatId: string): Promise<RecordedEvent[]> {
  const { rows } = await pool.query<RecordedEvent>('SELECT event, session_id, container_id, error FROM sandbox_events WHERE chat_id = $1 ORDER BY id', [chatId]);
  return rows;
}

export async function userIdOfKey(pool: Pool, key: string): Promise<string> {
  const principal = await findPrincipal(pool, key);
  if (!principal) throw new Error('unknown key');
  return principal.userId;
}

/** Ends what a test left: the chats' workflows and their containers (this instance's only). */
export async function discardChats(client: Client, docker: Docker, instance: string, chatIds: Iterable<string>): Promise<void> {
  for (const chatId of chatIds) {
    // Already finished is fine: only a still-running chat needs ending.
    await client.workflow.getHandle(makeSandboxWorkflowId(chatId)).terminate('test finished').catch(() => undefined);
    for (const container of await containersOfChat(docker, instance, chatId)) {
      await docker.getContainer(container.Id).remove({ force: true }).catch(() => undefined);
    }
  }
}

/**
 * The real engine, except that it cannot start a container: create works (the container is
 * left behind, as when the engine fails between create and start), every start is refused.
 */
export function dockerThatCannotStart(docker: Docker): Docker {
  const refuseStart = (container: Docker.Container) =>
    Object.assign(container, { start: () => Promise.reject(Object.assign(new Error('(injected) the engine could not start the container'), { statusCode: 500 })) });
  return new Proxy(docker, {
    get(target, property) {
      if (property === 'getContainer') return (id: string) => refuseStart(target.getContainer(id));
      if (property === 'createContainer') return async (options: Docker.ContainerCreateOptions) => refuseStart(await target.createContainer(options));
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
