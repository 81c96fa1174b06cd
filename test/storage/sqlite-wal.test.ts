/**
 * The SQLite storage's WAL under sustained writes, on real files in temp dirs: the exchange writes of many
 * concurrent requests, committed at every turn, keep the WAL file bounded (the writer holds its commits while the
 * checkpoint thread catches up, the next commit rewinds the WAL, `journal_size_limit` truncates the file), and holding
 * commits loses, reorders and hastens no answer.
 */
import type { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { openSqlite, type Synchronous } from '../../exchange-service/storage/sqlite.js';
import { sqliteFiles, walSize } from '../helpers/sqlite-files.js';
import { grantRecord } from '../postgres/support/records.js';

const ISSUER = 'https://token.actions.githubusercontent.com';
const MiB = 1024 * 1024;
/** Small, so that a few seconds of writes cross it many times (the default is 64 MiB). */
const RESTART_BYTES = 2 * MiB;
/**
 * The stated bound: the threshold plus the writes of a hold that timed out and its 1 s retry at full speed on a loaded
 * machine (CI shares two cores). Without the bound the WAL reaches 127–130 MiB in this test.
 */
const WAL_BOUND = 48 * MiB;
/** Enough writes for an unbounded WAL to pass WAL_BOUND several times over (about 2 KB of WAL per exchange). */
const EXCHANGES = 20_000;
const IN_FLIGHT = 50;

const files = sqliteFiles('deploy-sts-sqlite-wal-');

function count(db: DatabaseSync, sql: string, ...params: string[]): number {
  return Number((db.prepare(sql).get(...params) as { n: number }).n);
}

describe('the SQLite storage under sustained writes', () => {
  describe.each<Synchronous>(['FULL', 'NORMAL'])('with synchronous=%s', (synchronous) => {
    it(`keeps the WAL under ${WAL_BOUND / MiB} MiB through ${EXCHANGES.toLocaleString('en')} exchanges, ${IN_FLIGHT} in flight, and loses none`, async () => {
      const dir = files.dataDir();
      const storage = files.storage(openSqlite(dir, { synchronous, walRestartBytes: RESTART_BYTES }));
      // Another connection, as an operator's shell: an answer means the exchange's rows are committed.
      const other = files.connection(dir);
      const visible = other.prepare('SELECT count(*) AS n FROM replay_log WHERE jti = ?');

      let peak = 0;
      let shrank = 0;
      let last = 0;
      let answeredBeforeCommit = 0;
      let next = 0;
      const answers: string[] = [];
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < EXCHANGES) {
            const jti = `jti-${next++}`;
            const use = await storage.recordExchange({ issuer: ISSUER, jti, expiresAt: 2_000_000_000 }, (u) =>
              grantRecord({ detail: `${jti} ${u}` }),
            );
            answers.push(use);
            if (answers.length % 97 === 0 && Number((visible.get(jti) as { n: number }).n) !== 1) answeredBeforeCommit++;
            const size = walSize(dir);
            if (size < last) shrank++;
            last = size;
            peak = Math.max(peak, size);
          }
        }),
      );

      expect(answers).toHaveLength(EXCHANGES);
      expect(answers.every((use) => use === 'first')).toBe(true);
      expect(answeredBeforeCommit, 'answers whose rows another connection could not see yet').toBe(0);
      expect(peak, 'the WAL file at its largest').toBeLessThan(WAL_BOUND);
      // The WAL was rewound and its file truncated (journal_size_limit) at least once.
      expect(shrank, 'times the WAL file was truncated').toBeGreaterThan(0);

      // Writes queued while a hold may be in force are committed by close; every row is there after it.
      const late = Array.from({ length: 2_000 }, (_, i) =>
        storage.recordExchange({ issuer: ISSUER, jti: `late-${i}`, expiresAt: 2_000_000_000 }, () => grantRecord()),
      );
      await storage.close();
      expect(await Promise.all(late)).toEqual(late.map(() => 'first'));
      expect(count(other, 'SELECT count(*) AS n FROM replay_log')).toBe(EXCHANGES + 2_000);
      expect(count(other, 'SELECT count(*) AS n FROM audit')).toBe(EXCHANGES + 2_000);
      expect(walSize(dir)).toBeLessThan(WAL_BOUND);
    }, 30_000);
  });
});
