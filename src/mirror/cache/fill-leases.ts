import { randomUUID } from 'node:crypto';
import type { Queryable } from '../../db/database.ts';
import type { Digest } from '../../registry/digest.ts';

/** The right to fetch one blob from upstream, renewed while held. */
export interface FillLease {
  release(): Promise<void>;
}

export interface FillLeasesOptions {
  /** A lease not renewed for this long is free for another replica. Default 30 s. */
  ttlSeconds?: number;
}

/**
 * Which replica fetches a blob: the one holding its lease in the database that all replicas share.
 * Leases are renewed every third of their lifetime, so a replica that dies loses its leases within
 * one lifetime and a waiting replica takes over.
 */
export class FillLeases {
  readonly holder = randomUUID();
  readonly #db: Queryable;
  readonly #ttlSeconds: number;

  constructor(db: Queryable, options: FillLeasesOptions = {}) {
    this.#db = db;
    this.#ttlSeconds = options.ttlSeconds ?? 30;
  }

  /** The lease, or null while another replica holds it. */
  async acquire(digest: Digest): Promise<FillLease | null> {
    const { rows } = await this.#db.query(
      `INSERT INTO proxy_blob_fills (digest, holder, expires_at)
       VALUES ($1, $2, now() + make_interval(secs => $3))
       ON CONFLICT (digest) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
        WHERE proxy_blob_fills.expires_at < now()
       RETURNING holder`,
      [digest, this.holder, this.#ttlSeconds],
    );
    if (rows.length === 0) return null;
    const renewal = setInterval(
      () => {
        this.#db
          .query(
            `UPDATE proxy_blob_fills SET expires_at = now() + make_interval(secs => $3)
            WHERE digest = $1 AND holder = $2`,
            [digest, this.holder, this.#ttlSeconds],
          )
          .catch(() => {});
      },
      (this.#ttlSeconds * 1000) / 3,
    );
    renewal.unref();
    return {
      release: async () => {
        clearInterval(renewal);
        await this.#db.query(`DELETE FROM proxy_blob_fills WHERE digest = $1 AND holder = $2`, [
          digest,
          this.holder,
        ]);
      },
    };
  }
}
