import { invalid } from '../../errors.ts';
import type { OutputStream } from '../output/output-stream.ts';

/**
 * One entry of a build's log. `id` is its Redis stream id (`<ms>-<seq>`), which is also the cursor:
 * reading "after" an id returns the entries that follow it. `at` is when the builder produced it (ms).
 */
export type BuildLogEntry =
  | { id: string; type: 'line'; stream: OutputStream; text: string; at: number }
  | { id: string; type: 'phase'; phase: string; at: number }
  /** The build is over; `phase` is its final phase. Nothing follows it. */
  | { id: string; type: 'end'; phase: string; at: number }
  /** The log reached its size limit; later lines were dropped (phases and the end are still written). */
  | { id: string; type: 'truncated'; text: string; at: number };

export type BuildLogEntryType = BuildLogEntry['type'];

/** An entry before Redis gave it an id. */
export type NewBuildLogEntry = BuildLogEntry extends infer Entry
  ? Entry extends BuildLogEntry // distributes over the union, keeping each variant's own fields
    ? Omit<Entry, 'id'>
    : never
  : never;

/** The cursor before the first entry. */
export const startCursor = '0';

const buildIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const cursorPattern = /^(\d{1,20})(?:-(\d{1,20}))?$/;

export function buildLogKey(keyPrefix: string, buildId: string): string {
  if (!buildIdPattern.test(buildId)) throw invalid(`invalid build id "${buildId.slice(0, 64)}"`);
  return `${keyPrefix}:build-log:${buildId}`;
}

/** A cursor from a client (query string or Last-Event-ID); absent or empty means from the start. */
export function parseCursor(value: string | undefined | null): string {
  if (value === undefined || value === null || value === '') return startCursor;
  if (!cursorPattern.test(value)) throw invalid(`invalid log cursor "${value.slice(0, 64)}"`);
  return value;
}

/** Whether stream id `id` comes after `cursor`. */
export function isAfter(id: string, cursor: string): boolean {
  const [idMs, idSeq] = idParts(id);
  const [cursorMs, cursorSeq] = idParts(cursor);
  return idMs > cursorMs || (idMs === cursorMs && idSeq > cursorSeq);
}

function idParts(id: string): [bigint, bigint] {
  const match = cursorPattern.exec(id);
  if (!match) throw invalid(`invalid log cursor "${id.slice(0, 64)}"`);
  return [BigInt(match[1]!), BigInt(match[2] ?? 0)];
}

/** Stream entries are flat field/value lists; the short names keep each entry small. */
export function toStreamFields(entry: NewBuildLogEntry): string[] {
  const fields = ['t', entry.type, 'at', String(entry.at)];
  switch (entry.type) {
    case 'line':
      return [...fields, 's', entry.stream, 'x', entry.text];
    case 'phase':
    case 'end':
      return [...fields, 'p', entry.phase];
    case 'truncated':
      return [...fields, 'x', entry.text];
  }
}

export function fromStreamFields(id: string, fields: readonly string[]): BuildLogEntry {
  const values = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) values.set(fields[i]!, fields[i + 1]!);
  const at = Number(values.get('at') ?? 0);
  const type = values.get('t');
  switch (type) {
    case 'line':
      return {
        id,
        type,
        stream: values.get('s') === 'stderr' ? 'stderr' : 'stdout',
        text: values.get('x') ?? '',
        at,
      };
    case 'phase':
    case 'end':
      return { id, type, phase: values.get('p') ?? '', at };
    case 'truncated':
      return { id, type, text: values.get('x') ?? '', at };
    default:
      throw new Error(`build log entry ${id} has an unknown type "${type}"`);
  }
}

/** Checks an entry read back from an archive, which is JSON from storage. */
export function isBuildLogEntry(value: unknown): value is BuildLogEntry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  if (typeof entry.id !== 'string' || !cursorPattern.test(entry.id) || typeof entry.at !== 'number')
    return false;
  switch (entry.type) {
    case 'line':
      return (entry.stream === 'stdout' || entry.stream === 'stderr') && typeof entry.text === 'string';
    case 'phase':
    case 'end':
      return typeof entry.phase === 'string';
    case 'truncated':
      return typeof entry.text === 'string';
    default:
      return false;
  }
}
