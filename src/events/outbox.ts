import { randomUUID } from 'node:crypto';
import type { Queryable } from '../db/database.ts';
import type { TagChange, TagChangeListener } from '../registry/store.ts';
import { payloadVersion, type EventFields, type EventKind, type EventPayload } from './catalog.ts';

/** What an event is about: a repository, or a whole namespace. */
export interface EventSubject {
  namespace: string;
  repository: string | null;
}

export function subjectOfRepository(repository: string): EventSubject {
  const slash = repository.indexOf('/');
  return { namespace: slash < 0 ? repository : repository.slice(0, slash), repository };
}

export interface OutboxOptions {
  /** host[:port] clients pull from, for `docker_url`; read when each event is written. */
  registryHost: () => string;
  /** Called after an event was written, so a dispatcher in this process looks soon. */
  onWritten?: () => void;
}

/**
 * Events are written in the transaction of the change they tell of: a crash cannot lose one, nor
 * leave one for a change that rolled back. The dispatcher takes them from there.
 */
export class Outbox {
  readonly #options: OutboxOptions;

  constructor(options: OutboxOptions) {
    this.#options = options;
  }

  /** Builds the full payload of an event; `write` stores it, the test-event call sends it as is. */
  payload<K extends EventKind>(
    kind: K,
    subject: EventSubject,
    fields: EventFields<K>,
    extra: { test?: boolean } = {},
  ): EventPayload<K> {
    const { namespace, repository } = subject;
    return {
      id: randomUUID(),
      kind,
      version: payloadVersion,
      time: new Date().toISOString(),
      namespace,
      repository,
      name: repository === null ? null : repository.slice(repository.indexOf('/') + 1),
      docker_url: repository === null ? null : `${this.#options.registryHost()}/${repository}`,
      ...(extra.test ? { test: true } : {}),
      ...fields,
    } as unknown as EventPayload<K>;
  }

  async write<K extends EventKind>(
    tx: Queryable,
    kind: K,
    subject: EventSubject,
    fields: EventFields<K>,
  ): Promise<EventPayload<K>> {
    const payload = this.payload(kind, subject, fields);
    await insertEvent(tx, payload, null);
    this.#options.onWritten?.();
    return payload;
  }

  /** Registry tag changes as `repo_push` and `repo_tag_deleted` events. */
  tagChangeListener(): TagChangeListener {
    return {
      tagsMoved: async (tx, change) => {
        await this.write(tx, 'repo_push', subjectOfRepository(change.repository), {
          updated_tags: change.tags,
          digest: change.digest,
          media_type: change.mediaType,
          pusher: change.actor,
        });
      },
      tagsDeleted: async (tx, change: TagChange) => {
        await this.write(tx, 'repo_tag_deleted', subjectOfRepository(change.repository), {
          deleted_tags: change.tags,
          digest: change.digest,
          deleted_by: change.actor,
        });
      },
    };
  }
}

/** Stores an event; `dispatchedAt` set keeps it from being fanned out (a test event goes to one subscription). */
export async function insertEvent(
  q: Queryable,
  payload: EventPayload,
  dispatchedAt: Date | null,
): Promise<void> {
  await q.query(
    `INSERT INTO events (id, kind, namespace, repository, payload, occurred_at, dispatched_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      payload.id,
      payload.kind,
      payload.namespace,
      payload.repository,
      JSON.stringify(payload),
      payload.time,
      dispatchedAt,
    ],
  );
}
