import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { openPglite } from '../../src/db/pglite.ts';
import { openPostgres } from '../../src/db/postgres.ts';

const migration = '015_build_log_holds.sql';
const logDigest = `sha256:${'4c'.repeat(32)}`;

/**
 * Holds written before builds' log holds named their build (`build-log:<id>` only): the migration ties
 * those of existing builds to them and drops those whose build is gone, which nothing would ever free.
 */
describe.each(['pglite', 'postgres'] as const)('the build log holds migration on %s', (kind) => {
  let db: Database;

  beforeAll(async () => {
    db =
      kind === 'pglite'
        ? await openPglite()
        : await openPostgres({ url: inject('databaseUrl'), schema: `t_${randomBytes(6).toString('hex')}` });
    await migrate(db);
  });
  afterAll(() => db?.close());

  /** The schema as it was before the migration, with the holds an older gateway wrote. */
  async function beforeMigration(holders: string[]): Promise<void> {
    await db.exec(`ALTER TABLE blob_holds DROP COLUMN build_id;
      DELETE FROM slipway_migrations WHERE name = '${migration}'`);
    for (const holder of holders) {
      await db.query('INSERT INTO blob_holds (digest, holder) VALUES ($1, $2)', [logDigest, holder]);
    }
  }

  async function holds(): Promise<Array<{ holder: string; build_id: string | null }>> {
    const { rows } = await db.query<{ holder: string; build_id: string | null }>(
      'SELECT holder, build_id FROM blob_holds ORDER BY holder',
    );
    return rows;
  }

  it("ties an existing build's hold to it, drops those of deleted builds, and leaves other holds", async () => {
    const { rows } = await db.query<{ id: string }>(
      `WITH repository AS (INSERT INTO repositories (name) VALUES ('acme/app') RETURNING id)
       INSERT INTO builds (repository_id, trigger_kind, phase, clone_url, dockerfile, context, tags, finished_at)
       SELECT id, 'manual', 'complete', 'https://git.example.com/acme/app.git', 'Dockerfile', '.', '[]', now()
         FROM repository RETURNING id`,
    );
    const buildId = rows[0]!.id;
    const goneBuildId = randomUUID();
    await beforeMigration([
      `build-log:${buildId}`,
      `build-log:${goneBuildId}`,
      'build-log:not-a-uuid',
      'other:x',
    ]);

    expect(await migrate(db)).toContain(migration);
    expect(await holds()).toEqual([
      { holder: `build-log:${buildId}`, build_id: buildId },
      { holder: 'other:x', build_id: null },
    ]);

    await db.query("DELETE FROM repositories WHERE name = 'acme/app'");
    expect(await holds()).toEqual([{ holder: 'other:x', build_id: null }]);
  });
});
