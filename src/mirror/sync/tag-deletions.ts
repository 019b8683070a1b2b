import type { Digest } from '../../registry/digest.ts';
import { OciError } from '../../registry/errors.ts';
import type { LocalRegistryStore } from '../../registry/local-store.ts';
import { parseTag, type RepositoryName } from '../../registry/names.ts';
import type { Actor } from '../../registry/store.ts';
import type { DeletionReport, TagResult } from './sync-result.ts';

export interface DeleteMissingPolicy {
  enabled: boolean;
  /** More deletions than this in one run is taken for a mistake (a wrong filter, an emptied upstream): none is made. */
  maxDeletions: number;
}

export interface DeletionPlan {
  report: DeletionReport;
  /** The tags to delete; empty when deletion is off or refused. */
  tags: string[];
}

/** The local tags no longer among the selected upstream tags, within the policy's limit. */
export async function planDeletions(
  local: LocalRegistryStore,
  repository: RepositoryName,
  selected: ReadonlySet<string>,
  policy: DeleteMissingPolicy | undefined,
): Promise<DeletionPlan> {
  if (!policy?.enabled) return { report: { status: 'off' }, tags: [] };
  const missing = (await localTags(local, repository)).filter((tag) => !selected.has(tag));
  if (missing.length <= policy.maxDeletions)
    return { report: { status: 'allowed', tags: missing }, tags: missing };
  const reason =
    `safety check failed: ${missing.length} local tags are no longer selected upstream, more than the ` +
    `${policy.maxDeletions} allowed in one run, so none was deleted (check the filter and the upstream, ` +
    `or raise maxDeletions)`;
  return { report: { status: 'refused', tags: missing, reason }, tags: [] };
}

/** Deletes one local tag (or, in a dry run, only looks it up), as a `deleted` or `would-delete` result. */
export async function deleteTag(
  local: LocalRegistryStore,
  repository: RepositoryName,
  tag: string,
  options: { dryRun: boolean; actor: Actor },
): Promise<TagResult> {
  const reference = { kind: 'tag', tag: parseTag(tag) } as const;
  const digest = await localTagDigest(local, repository, tag);
  if (options.dryRun) return withDigest({ tag, outcome: 'would-delete' }, digest);
  try {
    await local.deleteManifest(repository, reference, options.actor);
  } catch (error) {
    if (!isUnknown(error)) throw error;
  }
  return withDigest({ tag, outcome: 'deleted' }, digest);
}

/** The digest the local tag points at, or undefined when there is no such tag. */
export async function localTagDigest(
  local: LocalRegistryStore,
  repository: RepositoryName,
  tag: string,
): Promise<Digest | undefined> {
  try {
    return (await local.getManifest(repository, { kind: 'tag', tag: parseTag(tag) })).digest;
  } catch (error) {
    if (isUnknown(error)) return undefined;
    throw error;
  }
}

async function localTags(local: LocalRegistryStore, repository: RepositoryName): Promise<string[]> {
  try {
    return (await local.listTags(repository, {})).items;
  } catch (error) {
    if (isUnknown(error)) return [];
    throw error;
  }
}

function isUnknown(error: unknown): boolean {
  return error instanceof OciError && (error.code === 'MANIFEST_UNKNOWN' || error.code === 'NAME_UNKNOWN');
}

function withDigest(result: TagResult, digest: Digest | undefined): TagResult {
  return digest === undefined ? result : { ...result, digest };
}
