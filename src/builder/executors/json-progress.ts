import type { ExecutorOutput } from './executor-output.ts';
import { LineSplitter } from '../output/line-splitter.ts';

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
 * A message is one line of JSON; one longer than this is passed on cut (and so written as text, not
 * parsed) and the rest of it dropped. Far above what the engine sends in one message; the text lines
 * inside messages have the default cap of `output`'s splitter.
 */
const maxMessageLength = 1024 * 1024;

/**
 * Reads a JSON progress stream to its end, writing its text to `output`: `stream` text as stdout
 * lines (split across messages), status lines without their progress bars, and errors to stderr.
 */
export function followProgress(
  response: NodeJS.ReadableStream,
  output: ExecutorOutput,
): Promise<ProgressOutcome> {
  const outcome: ProgressOutcome = { aux: [], statuses: [] };
  const text = output.splitter('stdout');
  const onMessage = (raw: string) => {
    if (!raw.trim()) return;
    let message: ProgressMessage;
    try {
      message = JSON.parse(raw) as ProgressMessage;
    } catch {
      text.end();
      output.line('stdout', raw);
      return;
    }
    if (message.stream !== undefined) text.push(message.stream);
    if (message.status !== undefined) outcome.statuses.push(message.status);
    if (message.status !== undefined && !isOngoingProgress(message)) {
      text.end();
      output.line('stdout', message.id ? `${message.id}: ${message.status}` : message.status);
    }
    if (message.aux) outcome.aux.push(message.aux);
    const error = message.error ?? message.errorDetail?.message;
    if (error !== undefined) {
      text.end();
      output.line('stderr', error);
      outcome.error = error;
    }
  };
  const messages = new LineSplitter(onMessage, { maxLineLength: maxMessageLength });
  return new Promise((resolve, reject) => {
    response.on('data', (chunk: Buffer) => messages.push(chunk));
    response.once('end', () => {
      messages.end();
      text.end();
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
