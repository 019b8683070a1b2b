import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database } from './database.ts';

const migrationsDir = join(import.meta.dirname, 'migrations');
/** Arbitrary constant: serialises migrations when several replicas start at once. */
const migrationLockKey = 0x51_1b_a7;

/** Applies every `NNN_name.sql` not yet applied, each in its own transaction, in file-name order. */
export async function migrate(db: Database): Promise<string[]> {
  const files = (await readdir(migrationsDir)).filter((f) => f.endsWith('.sql')).sort();
  const applied: string[] = [];
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [migrationLockKey]);
    await tx.exec(
      'CREATE TABLE IF NOT EXISTS slipway_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set(
      (await tx.query<{ name: string }>('SELECT name FROM slipway_migrations')).rows.map((r) => r.name),
    );
    for (const file of files) {
      if (done.has(file)) continue;
      await tx.exec(await readFile(join(migrationsDir, file), 'utf8'));
      await tx.query('INSERT INTO slipway_migrations (name) VALUES ($1)', [file]);
      applied.push(file);
    }
  });
  return applied;
}
