import type { LocalRegistryStore } from '../../registry/local-store.ts';
import { parseRepositoryName, parseTag, type RepositoryName } from '../../registry/names.ts';
import type { Actor } from '../../registry/store.ts';
import type { ManifestHead, UpstreamClient } from '../upstream/client.ts';
import { messageOf } from '../../errors.ts';
import { UpstreamNotFoundError } from '../upstream/errors.ts';
import { BandwidthLimiter } from './bandwidth.ts';
import { ImageCopier } from './copy-image.ts';
import { withRetries, type RetryPolicy } from './retry.ts';
import type { MirrorDefinition } from './skopeo-sync-file.ts';
import { countOutcomes, type DeletionReport, type MirrorSyncResult, type TagResult } from './sync-result.ts';
import { deleteTag, localTagDigest, planDeletions, type DeleteMissingPolicy } from './tag-deletions.ts';
import { selectTags } from './tag-filter.ts';

export type { DeleteMissingPolicy } from './tag-deletions.ts';
export type { DeletionReport, MirrorSyncResult, TagOutcome, TagResult } from './sync-result.ts';

export interface MirrorSyncDeps {
  /** A client of the definition's upstream registry. */
  upstream: UpstreamClient;
  local: LocalRegistryStore;
}

export interface MirrorSyncOptions {
  /** Only list, filter and compare digests: report what a run would do, writing nothing. */
  dryRun?: boolean;
  /** Tags synced at the same time. Default 4. */
  concurrency?: number;
  /** Cancels the run: no further tag starts, and copies in flight are aborted. */
  signal?: AbortSignal;
  /** Delete local tags no longer selected upstream (gone there, or no longer matching the filter). */
  deleteMissing?: DeleteMissingPolicy;
  /** Tags asked for per page of the upstream's tag list (`n`); every page is read. Default: the upstream's choice. */
  tagPageSize?: number;
  /** Called with each tag's result as soon as it is known. */
  onProgress?: (result: TagResult) => void;
  /** How a failed tag is tried again; an upstream 404 or 401 is never retried. */
  retry?: RetryPolicy;
  /** The name tag moves and deletions are recorded under (`pusher` of `repo_push`); default none. */
  actor?: string | null;
  /**
   * Bytes per second the run downloads blobs at, at most: one limit shared by all the tags copied at
   * the same time. Manifests are not counted. Undefined or null: unlimited.
   */
  bandwidthLimit?: number | null;
}

const defaultConcurrency = 4;

/**
 * One sync of a mirror: lists the upstream's tags (following pagination), filters them, and for each
 * selected tag compares the upstream's digest (a HEAD) with the local tag's. A tag already at that
 * digest is left alone, so it records no tag move and no event; a new or moved tag is copied with
 * everything it needs before it moves, which records a `repo_push` as a push does. A tag that fails is
 * tried again with backoff, then reported failed; the others go on.
 *
 * Fails as a whole only when the tag list cannot be read.
 */
export async function runMirrorSync(
  definition: MirrorDefinition,
  deps: MirrorSyncDeps,
  options: MirrorSyncOptions = {},
): Promise<MirrorSyncResult> {
  return new SyncRun(definition, deps, options).execute();
}

class SyncRun {
  readonly #definition: MirrorDefinition;
  readonly #deps: MirrorSyncDeps;
  readonly #options: MirrorSyncOptions;
  readonly #repository: RepositoryName;
  readonly #actor: Actor;
  readonly #copier: ImageCopier;
  readonly #concurrency: number;
  readonly #started = performance.now();

  constructor(definition: MirrorDefinition, deps: MirrorSyncDeps, options: MirrorSyncOptions) {
    this.#definition = definition;
    this.#deps = deps;
    this.#options = options;
    this.#repository = parseRepositoryName(definition.name);
    this.#actor = { name: options.actor ?? null };
    this.#concurrency = checkedConcurrency(options.concurrency ?? defaultConcurrency);
    this.#copier = new ImageCopier({
      upstream: deps.upstream,
      remote: definition.upstream.repository,
      local: deps.local,
      repository: this.#repository,
      platforms: definition.platforms,
      actor: this.#actor,
      signal: options.signal,
      bandwidth: limiterOf(options.bandwidthLimit),
    });
  }

  async execute(): Promise<MirrorSyncResult> {
    const listed = await this.#listUpstreamTags();
    if (listed === null) return this.#result([], { status: 'not-run', reason: 'cancelled' }, []);
    const decisions = selectTags(this.#definition.filter, listed);
    const selected = decisions.filter((d) => d.selected).map((d) => d.tag);
    const results = new Map<string, TagResult>();
    for (const decision of decisions) {
      const { tag } = decision;
      if (!decision.selected) this.#report(results, { tag, outcome: 'skipped', reason: decision.reason });
    }
    const notStarted = await forEachBounded(selected, this.#concurrency, this.#options.signal, async (tag) =>
      this.#report(results, await this.#syncTag(tag)),
    );
    const ordered = decisions.flatMap((d) => results.get(d.tag) ?? []);
    const { report, deleted } = await this.#deleteMissing(new Set(selected));
    return this.#result([...ordered, ...deleted], report, notStarted);
  }

  /** The upstream's tags, or null when the run was cancelled while listing them. */
  async #listUpstreamTags(): Promise<string[] | null> {
    const { signal, tagPageSize } = this.#options;
    const remote = this.#definition.upstream.repository;
    try {
      const tags = await this.#deps.upstream.listTags(remote, {
        signal,
        ...(tagPageSize === undefined ? {} : { n: tagPageSize }),
      });
      return [...new Set(tags)];
    } catch (error) {
      if (signal?.aborted) return null;
      throw error;
    }
  }

  async #syncTag(tag: string): Promise<TagResult> {
    const { retry, signal } = this.#options;
    try {
      return await withRetries(() => this.#attemptTag(tag), retry, signal);
    } catch (error) {
      const reason = signal?.aborted ? 'cancelled before the copy finished' : messageOf(error);
      return { tag, outcome: 'failed', reason };
    }
  }

  async #attemptTag(tag: string): Promise<TagResult> {
    const head = await this.#headUpstream(tag);
    if (head === null)
      return { tag, outcome: 'skipped', reason: 'deleted upstream after the tag list was read' };
    const digest = head.digest;
    const unchanged =
      (await localTagDigest(this.#deps.local, this.#repository, tag)) === digest &&
      !(await this.#copier.lacksChildren(digest));
    if (unchanged) return { tag, outcome: 'unchanged', digest };
    if (this.#options.dryRun) return { tag, outcome: 'would-copy', digest };
    const bytes = await this.#copier.copyTag(parseTag(tag), digest);
    return { tag, outcome: 'copied', digest, bytes };
  }

  async #headUpstream(tag: string): Promise<ManifestHead | null> {
    const { upstream } = this.#deps;
    try {
      return await upstream.headManifest(this.#definition.upstream.repository, tag, undefined, {
        signal: this.#options.signal,
      });
    } catch (error) {
      if (error instanceof UpstreamNotFoundError) return null;
      throw error;
    }
  }

  async #deleteMissing(
    selected: ReadonlySet<string>,
  ): Promise<{ report: DeletionReport; deleted: TagResult[] }> {
    if (this.#options.signal?.aborted)
      return { report: { status: 'not-run', reason: 'cancelled' }, deleted: [] };
    const { local } = this.#deps;
    const plan = await planDeletions(local, this.#repository, selected, this.#options.deleteMissing);
    const deleted: TagResult[] = [];
    for (const tag of plan.tags) {
      const result = await this.#deleteOne(tag);
      deleted.push(result);
      this.#options.onProgress?.(result);
    }
    return { report: plan.report, deleted };
  }

  async #deleteOne(tag: string): Promise<TagResult> {
    const dryRun = this.#options.dryRun ?? false;
    try {
      return await deleteTag(this.#deps.local, this.#repository, tag, { dryRun, actor: this.#actor });
    } catch (error) {
      return { tag, outcome: 'failed', reason: `could not delete: ${messageOf(error)}` };
    }
  }

  #report(results: Map<string, TagResult>, result: TagResult): void {
    results.set(result.tag, result);
    this.#options.onProgress?.(result);
  }

  #result(tags: TagResult[], deletions: DeletionReport, notStarted: string[]): MirrorSyncResult {
    return {
      repository: this.#repository,
      dryRun: this.#options.dryRun ?? false,
      cancelled: this.#options.signal?.aborted ?? false,
      tags,
      totals: countOutcomes(tags),
      bytesCopied: tags.reduce((sum, result) => sum + (result.bytes ?? 0), 0),
      durationMs: Math.round(performance.now() - this.#started),
      deletions,
      notStarted,
    };
  }
}

/**
 * Runs `work` over `items`, at most `concurrency` at a time, starting none once `signal` aborts;
 * returns the items never started. `work` must not throw.
 */
async function forEachBounded<T>(
  items: readonly T[],
  concurrency: number,
  signal: AbortSignal | undefined,
  work: (item: T) => Promise<void>,
): Promise<T[]> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !signal?.aborted) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return items.slice(next);
}

function checkedConcurrency(wanted: number): number {
  if (!Number.isInteger(wanted) || wanted < 1) {
    throw new RangeError(`concurrency must be a whole number of at least 1, got ${wanted}`);
  }
  return wanted;
}

/** One limiter for the whole run, so tags copied at the same time share the limit. */
function limiterOf(bytesPerSecond: number | null | undefined): BandwidthLimiter | undefined {
  return bytesPerSecond === undefined || bytesPerSecond === null
    ? undefined
    : new BandwidthLimiter(bytesPerSecond);
}
