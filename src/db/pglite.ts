import { PGlite, type Transaction } from '@electric-sql/pglite';
import { setFlagsFromString } from 'node:v8';
import type { Database, Queryable, QueryResult } from './database.ts';

const int8 = 20;

/** Embedded PostgreSQL (WASM) stored under `dataDir`, or in memory when `dataDir` is omitted. */
export async function openPglite(dataDir?: string): Promise<Database> {
  keepWasmOnBaselineCompiler();
  const db = await PGlite.create({
    ...(dataDir ? { dataDir } : {}),
    parsers: { [int8]: Number },
    // Registry metadata is small and hot rows are cached by the gateway: PostgreSQL's default 128 MB of
    // shared buffers would only add resident memory to the process.
    postgresqlconf: ['shared_buffers=16MB'],
  });
  return new PgliteDatabase(db);
}

/**
 * V8 recompiles hot WebAssembly functions with its optimising compiler, and doing that to PostgreSQL's
 * largest functions (the parser, the expression interpreter) takes ~500 MiB of compiler memory for a
 * moment: measured peak RSS 790 MiB instead of 360 MiB after a few thousand pushes, 1.15 GiB instead of
 * 580 MiB on a first start (initdb). Staying on the baseline compiler costs ~7% on SQL-heavy work,
 * and reads of hot metadata are served from the gateway's own cache anyway. Set before the module is
 * compiled; V8 reads these flags per compilation, and nothing else in the process runs WebAssembly.
 */
function keepWasmOnBaselineCompiler(): void {
  setFlagsFromString('--no-wasm-dynamic-tiering');
  setFlagsFromString('--no-wasm-tier-up');
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
