/**
 * PostgreSQL plumbing shared by everything that keeps data there (the storage backend, its migrations, the key
 * store of keys/): transactions and advisory locks. One place, so a lock id is never reused by accident and every
 * statement of a transaction runs on that transaction's connection.
 */
import pg from 'pg';

/** Advisory locks are (namespace, id) pairs; the namespace is "DSTS" so other applications' locks never collide. */
export const LOCK_NAMESPACE = 0x44535453;
export const LOCKS = {
  /** Held while migrating. */
  migrate: 1,
  /** Held while a process checks for, and if need be creates, the first signing key. */
  initialKey: 2,
  /** Held inside every transaction that writes a signing key, so there is never more than one active key. */
  keyWrite: 3,
} as const;

/** A pool, or one connection of it checked out for a transaction. */
export type Db = pg.Pool | pg.PoolClient;

/**
 * Run `work` in a transaction. On a pool: on one of its connections, committed at the end, rolled back (and a broken
 * connection discarded) on any error. On a connection that is already in a transaction: on that connection, inside
 * the transaction the caller holds.
 */
export async function inTransaction<T>(db: Db, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  if (!(db instanceof pg.Pool)) return work(db);
  const client = await db.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => {
      broken = rollbackError;
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

/** Take an advisory lock held until the end of the client's transaction. */
export async function advisoryXactLock(client: pg.PoolClient, lock: (typeof LOCKS)[keyof typeof LOCKS]): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_NAMESPACE, lock]);
}

/** Let a statement wait longer than the pool's statement timeout (waiting for another replica is not slow SQL). */
export async function allowLongWait(client: pg.PoolClient): Promise<void> {
  await client.query("SET LOCAL statement_timeout = '60s'");
}
