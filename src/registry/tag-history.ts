import type { Database } from '../db/database.ts';
import type { Digest } from './digest.ts';
import { OciError } from './errors.ts';
import * as sql from './metadata/sql.ts';
import type { RepositoryName, TagName } from './names.ts';
import type { Actor, TagChangeListener } from './store.ts';

export type { TagDetail, TagHistoryEntry } from './metadata/sql.ts';

/**
 * Every tag move is recorded (who, when, from which digest), so a tag can be put back where it was.
 * Restoring works while the manifest still exists: untagged manifests are kept for the GC grace period.
 */
export class TagHistory {
  readonly #db: Database;
  readonly #onTagMoved: (repository: RepositoryName, tag: TagName) => void;
  readonly #tagChanges: TagChangeListener | undefined;

  constructor(
    db: Database,
    onTagMoved: (repository: RepositoryName, tag: TagName) => void,
    tagChanges?: TagChangeListener,
  ) {
    this.#db = db;
    this.#onTagMoved = onTagMoved;
    this.#tagChanges = tagChanges;
  }

  /** The repository's tags with their digests and when each last moved, in name order after `last`. */
  tags(repository: RepositoryName, last: string | undefined, limit: number): Promise<sql.TagDetail[]> {
    return sql.listTagDetails(this.#db, repository, last, limit);
  }

  /** Newest first. */
  list(repository: RepositoryName, tag: TagName, limit = 100): Promise<sql.TagHistoryEntry[]> {
    return sql.listTagHistory(this.#db, repository, tag, limit);
  }

  async restore(repository: RepositoryName, tag: TagName, digest: Digest, actor: Actor): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const repositoryId = await sql.findRepositoryId(tx, repository);
      if (repositoryId === null) throw new OciError('NAME_UNKNOWN', `repository ${repository} is not known`);
      const { rows } = await tx.query<{ media_type: string }>(
        'SELECT media_type FROM manifests WHERE repository_id = $1 AND digest = $2 FOR SHARE',
        [repositoryId, digest],
      );
      if (rows.length === 0) {
        throw new OciError(
          'MANIFEST_UNKNOWN',
          `manifest ${digest} is no longer in ${repository}: garbage collection removed it; push it again to tag it`,
        );
      }
      if ((await sql.moveTag(tx, repositoryId, tag, digest, actor.name)) === digest) return;
      await this.#tagChanges?.tagsMoved(tx, {
        repository,
        digest,
        mediaType: rows[0]!.media_type,
        tags: [tag],
        actor: actor.name,
      });
    });
    this.#onTagMoved(repository, tag);
  }
}
