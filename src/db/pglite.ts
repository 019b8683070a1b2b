import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { Database, Queryable, QueryResult } from './database.ts';

const int8 = 20;

/** Embedded PostgreSQL (WASM) stored under `dataDir`, or in memory when `dataDir` is omitted. */
export async function openPglite(dataDir?: string): Promise<Database> {
  const db = await PGlite.create({
    ...(dataDir ? { dataDir } : {}),
    parsers: { [int8]: Number },
    // Registry metadata is small and hot rows are cached by the gateway: PostgreSQL's default 128 MB of
    // shared buffers would only add resident memory to the process.
    postgresqlconf: ['shared_buffers=16MB'],
  });
  return new PgliteDatabase(db);
}

function wrap(target: PGlite | Transaction): Queryable {
  return {
    async query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const result = await target.query<R>(text, params as unknown[] | undefined);
      // pg counts the rows a SELECT returns; PGlite reports 0 affected rows for it.
      return { rows: result.rows, rowCount: Math.max(result.affectedRows ?? 0, result.rows.length) };
    },
    async exec(script: string): Promise<void> {
      await target.exec(script);
    },
  };
}

class PgliteDatabase implements Database {
  readonly kind = 'pglite';
  readonly #db: PGlite;
  readonly #queryable: Queryable;
  readonly #held = new Set<number>();

  constructor(db: PGlite) {
    this.#db = db;
    this.#queryable = wrap(db);
  }

  query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    return this.#queryable.query<R>(text, params);
  }

  exec(script: string): Promise<void> {
    return this.#queryable.exec(script);
  }

  /** PGlite has one connection, so transactions run one at a time: nothing to retry. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#db.transaction((tx) => work(wrap(tx)));
  }

  /** One process owns a PGlite directory, so an in-process set of held keys is the whole story. */
  async tryWithLock<T>(key: number, work: () => Promise<T>): Promise<T | null> {
    if (this.#held.has(key)) return null;
    this.#held.add(key);
    try {
      return await work();
    } finally {
      this.#held.delete(key);
    }
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}
