import type { Database } from './database.ts';

/**
 * The prefix of every BullMQ queue's keys: `slipway:<installation id>`, so installations that share a
 * Redis never take each other's jobs, while every process of one installation (same database) shares them.
 */
export async function queuePrefix(db: Database): Promise<string> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM installation');
  if (!rows[0]) throw new Error('the installation table is empty: the database migrations did not run');
  return `slipway:${rows[0].id}`;
}
