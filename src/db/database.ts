export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Queryable {
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

/** PostgreSQL through `pg`, or PGlite in-process: the same SQL serves both. */
export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `work` in one READ COMMITTED transaction; retried on deadlock or serialization failure. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs `work` only if no other process (or caller) holds the named lock; returns null when it is
   * held. For singleton jobs such as garbage collection across replicas.
   */
  tryWithLock<T>(key: number, work: () => Promise<T>): Promise<T | null>;
  close(): Promise<void>;
}

const retryableSqlStates = new Set(['40001', '40P01']);

export async function withTransactionRetry<T>(attempt: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      const state = (error as { code?: string }).code;
      if (i >= attempts || !state || !retryableSqlStates.has(state)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5 * i + Math.random() * 10));
    }
  }
}

/** PGlite hands back bytea as Uint8Array, pg as Buffer: callers get a Buffer either way, without copying. */
export function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
