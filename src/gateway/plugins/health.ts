import type { FastifyPluginAsync } from 'fastify';
import type { Database } from '../../db/database.ts';
import type { BlobDriver } from '../../registry/storage/driver.ts';

export interface HealthOptions {
  db: Database;
  driver: BlobDriver;
}

/**
 * `/health/instance`: this process answers. `/health/endtoend`: it can also reach its database and
 * read and write blob storage; 503 with the failing service named when not.
 */
export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (app, { db, driver }) => {
  app.get('/health/instance', async () => ({ status: 'ok' }));

  app.get('/health/endtoend', async (_request, reply) => {
    const [database, storage] = await Promise.all([
      check(() => db.query('SELECT 1').then(() => {})),
      check(() => driver.checkHealth()),
    ]);
    const healthy = database.ok && storage.ok;
    return reply.code(healthy ? 200 : 503).send({
      status: healthy ? 'ok' : 'unhealthy',
      services: { database: { kind: db.kind, ...database }, storage: { kind: driver.kind, ...storage } },
    });
  });
};

async function check(probe: () => Promise<void>): Promise<{ ok: boolean; error?: string }> {
  try {
    await probe();
    return { ok: true };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}
