import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { BuildPhase } from '../../../builder/build-store.ts';
import { isActive } from '../../../builder/build-store.ts';
import type { BuildLogEntry } from '../../../builder/logs/entry.ts';
import type { BuildLogReader } from '../../../builder/logs/reader.ts';
import { formatSseEvent, sseKeepAlive } from '../../../builder/logs/sse.ts';

export interface BuildLogStreamOptions {
  reader: Pick<BuildLogReader, 'read' | 'follow'>;
  buildId: string;
  /** Where to start: after this entry id ('0' from the start). */
  cursor: string;
  /** The build's phase now, read again at every keep-alive to notice a build whose log lacks its end. */
  phaseOf: () => Promise<BuildPhase | null>;
  /** Aborted when the client goes away or the gateway shuts down. */
  signal: AbortSignal;
  keepAliveMs?: number;
}

export const sseHeaders = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  Connection: 'keep-alive',
  // nginx would otherwise buffer the stream and deliver lines in bursts.
  'X-Accel-Buffering': 'no',
};

/**
 * Streams a build's log as Server-Sent Events: the entries after the cursor, then each new one, until
 * the `end` entry, with a keep-alive comment during quiet stretches. Every build's log ends with an
 * `end` entry, also when the gateway ended the build itself (cancelled while waiting, builder vanished,
 * overdue), so followers stop as soon as it is written. Should a log still lack its end (the gateway
 * could not write it, or the build ended before logs were ended that way), the client gets a closing
 * `end` event with the final phase once a keep-alive interval passes without entries, or at once when
 * the build had ended before the follow began, so clients stop instead of waiting for ever.
 */
export async function streamBuildLog(
  response: ServerResponse,
  options: BuildLogStreamOptions,
): Promise<void> {
  const { reader, buildId, signal } = options;
  const following = new AbortController();
  const stopFollowing = () => following.abort();
  signal.addEventListener('abort', stopFollowing, { once: true });
  let cursor = options.cursor;
  let ended = false;
  let quiet = true;
  let endedPhase: BuildPhase | null = null;

  const write = async (text: string) => {
    if (response.writableEnded || response.destroyed) return;
    if (!response.write(text)) await once(response, 'drain', { signal }).catch(() => {});
  };
  const keepAlive = setInterval(() => {
    void (async () => {
      const phase = await options.phaseOf().catch(() => null);
      if (quiet && phase !== null && !isActive(phase)) {
        endedPhase = phase;
        following.abort();
        return;
      }
      quiet = true;
      await write(sseKeepAlive);
    })();
  }, options.keepAliveMs ?? 15_000);

  /** Sends what is left of the log of a build that ended, and its end when the log has none. */
  const drain = async (phase: BuildPhase) => {
    while (!ended && !signal.aborted) {
      const page = await reader.read(buildId, cursor);
      for (const entry of page.entries) {
        await write(formatSseEvent(entry));
        if (entry.type === 'end') ended = true;
      }
      cursor = page.cursor;
      if (page.entries.length === 0) break;
    }
    if (!ended && !signal.aborted) {
      const end: BuildLogEntry = { id: cursor, type: 'end', phase, at: Date.now() };
      await write(formatSseEvent(end));
    }
  };

  try {
    const phase = await options.phaseOf();
    if (phase !== null && !isActive(phase)) return await drain(phase);
    for await (const entry of reader.follow(buildId, cursor, following.signal)) {
      quiet = false;
      cursor = entry.id;
      await write(formatSseEvent(entry));
      if (entry.type === 'end') ended = true;
    }
    if (endedPhase !== null) await drain(endedPhase);
  } finally {
    clearInterval(keepAlive);
    signal.removeEventListener('abort', stopFollowing);
    if (!response.writableEnded) response.end();
  }
}
