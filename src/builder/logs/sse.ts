import { parseCursor, type BuildLogEntry } from './entry.ts';

/**
 * One Server-Sent Event per entry: its id is the entry's cursor, so a reconnecting EventSource sends it
 * back as Last-Event-ID and resumes right after it. JSON never holds a raw line break, so one `data:`
 * line always carries the whole entry.
 */
export function formatSseEvent(entry: BuildLogEntry): string {
  return `id: ${entry.id}\nevent: ${entry.type}\ndata: ${JSON.stringify(entry)}\n\n`;
}

/** A comment line; sent during quiet stretches so proxies do not close an idle stream. */
export const sseKeepAlive = ': keep-alive\n\n';

/**
 * Where a follow starts: the Last-Event-ID of a reconnecting client wins over the cursor it first
 * asked for, since it is further along; neither means from the start. Throws on a malformed cursor.
 */
export function cursorForFollow(
  lastEventId: string | readonly string[] | undefined,
  requestedCursor?: string,
): string {
  const resumed = Array.isArray(lastEventId) ? lastEventId.at(-1) : lastEventId;
  return parseCursor(resumed || requestedCursor);
}
