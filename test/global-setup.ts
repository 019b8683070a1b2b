import type { TestProject } from 'vitest/node';
import { startThrowawayPostgres, type ThrowawayPostgres } from './helpers/postgres.ts';
import { startThrowawayRedis, type ThrowawayRedis } from './helpers/redis.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL server for tests: DATABASE_URL when set, else one started for this run. */
    databaseUrl: string;
    /** A Redis server for tests: REDIS_URL when set, else one started for this run. */
    redisUrl: string;
  }
}

let postgres: ThrowawayPostgres | undefined;
let redis: ThrowawayRedis | undefined;

export async function setup(project: TestProject): Promise<void> {
  let url = process.env.DATABASE_URL;
  if (!url) {
    postgres = await startThrowawayPostgres();
    url = postgres.url;
  }
  project.provide('databaseUrl', url);
  let redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    redis = await startThrowawayRedis();
    redisUrl = redis.url;
  }
  project.provide('redisUrl', redisUrl);
}

export async function teardown(): Promise<void> {
  await Promise.all([postgres?.stop(), redis?.stop()]);
}
