import type { BuildLog } from './build-log.ts';
import { LineSplitter } from './output-lines.ts';

/** One message of the Docker Engine API's JSON progress stream (build, push). */
export interface ProgressMessage {
  stream?: string;
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
  aux?: Record<string, unknown>;
}

export interface ProgressOutcome {
  /** The `aux` objects, in order (the built image ID, the pushed digest). */
  aux: Record<string, unknown>[];
  /** The status texts, in order. */
  statuses: string[];
  /** The error the engine reported in the stream, if any. */
  error?: string;
}

/**
 * Reads a JSON progress stream to its end, writing its text to the build log: `stream` text as stdout
 * lines (split across messages), status lines without their progress bars, and errors to stderr.
 */
export function followProgress(response: NodeJS.ReadableStream, log: BuildLog): Promise<ProgressOutcome> {
  const outcome: ProgressOutcome = { aux: [], statuses: [] };
  const text = log.splitter('stdout');
  const onMessage = (raw: string) => {
    if (!raw.trim()) return;
    let message: ProgressMessage;
    try {
      message = JSON.parse(raw) as ProgressMessage;
    } catch {
      text.flush();
      log.line('stdout', raw);
      return;
    }
    if (message.stream !== undefined) text.push(message.stream);
    if (message.status !== undefined) outcome.statuses.push(message.status);
    if (message.status !== undefined && !isOngoingProgress(message)) {
      text.flush();
      log.line('stdout', message.id ? `${message.id}: ${message.status}` : message.status);
    }
    if (message.aux) outcome.aux.push(message.aux);
    const error = message.error ?? message.errorDetail?.message;
    if (error !== undefined) {
      text.flush();
      log.line('stderr', error);
      outcome.error = error;
    }
  };
  const messages = new LineSplitter(onMessage);
  return new Promise((resolve, reject) => {
    response.on('data', (chunk: Buffer) => messages.push(chunk));
    response.once('end', () => {
      messages.flush();
      text.flush();
      resolve(outcome);
    });
    response.once('error', reject);
    response.once('close', () => reject(new Error('the engine closed the progress stream before its end')));
  });
}

function isOngoingProgress(message: ProgressMessage): boolean {
  const detail = message.progressDetail;
  return detail !== undefined && (detail.current !== undefined || detail.total !== undefined);
}
