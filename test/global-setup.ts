import type { TestProject } from 'vitest/node';
import { startThrowawayPostgres, type ThrowawayPostgres } from './helpers/postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL server for tests: DATABASE_URL when set, else one started for this run. */
    databaseUrl: string;
  }
}

let postgres: ThrowawayPostgres | undefined;

export async function setup(project: TestProject): Promise<void> {
  let url = process.env.DATABASE_URL;
  if (!url) {
    postgres = await startThrowawayPostgres();
    url = postgres.url;
  }
  project.provide('databaseUrl', url);
}

export async function teardown(): Promise<void> {
  await postgres?.stop();
}
