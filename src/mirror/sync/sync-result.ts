import type { Digest } from '../../registry/digest.ts';

export const tagOutcomes = [
  'copied',
  'unchanged',
  'skipped',
  'failed',
  'deleted',
  'would-copy',
  'would-delete',
] as const;

/**
 * What a sync did with one tag: `copied` (new or moved upstream), `unchanged` (already the upstream's
 * digest here), `skipped` (left out by the filter, or gone upstream since the tag list was read),
 * `failed`, `deleted` (here but no longer selected upstream); a dry run says `would-copy` and
 * `would-delete` instead.
 */
export type TagOutcome = (typeof tagOutcomes)[number];

export interface TagResult {
  tag: string;
  outcome: TagOutcome;
  /** The upstream's digest for the tag; for a deletion, the digest the local tag pointed at. */
  digest?: Digest;
  /** Why it was skipped or failed. */
  reason?: string;
  /** Bytes downloaded from the upstream for it (manifests and blobs not already stored here). */
  bytes?: number;
}

/**
 * Deleting local tags that are no longer selected upstream: `off` unless asked for; `allowed` when
 * they are within the limit (deleted, or in a dry run only listed); `refused` when more would go than
 * allowed, a failed safety check (none is deleted then); `not-run` when the run was cancelled first.
 */
export type DeletionReport =
  | { status: 'off' }
  | { status: 'allowed'; tags: string[] }
  | { status: 'refused'; tags: string[]; reason: string }
  | { status: 'not-run'; reason: string };

export interface MirrorSyncResult {
  /** The local repository synced. */
  repository: string;
  dryRun: boolean;
  /** The signal aborted the run: tags not started are in `notStarted`, aborted ones failed. */
  cancelled: boolean;
  /** Every listed tag in the upstream's order, then the local tags deleted. */
  tags: TagResult[];
  totals: Record<TagOutcome, number>;
  /** Bytes downloaded from the upstream over all tags. */
  bytesCopied: number;
  durationMs: number;
  deletions: DeletionReport;
  /** Selected tags the run did not get to because it was cancelled. */
  notStarted: string[];
}

export function countOutcomes(results: readonly TagResult[]): Record<TagOutcome, number> {
  const totals = Object.fromEntries(tagOutcomes.map((outcome) => [outcome, 0])) as Record<TagOutcome, number>;
  for (const result of results) totals[result.outcome]++;
  return totals;
}
