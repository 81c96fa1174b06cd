/**
 * The group-commit writer (storage/group-commit.ts) on a real SQLite file, with the WAL's `fdatasync` stood in for:
 * each sync the writer begins is recorded with its lane and the rows committed when it began, and ends (or fails)
 * when the test says — the only way to hold a sync open, to have two overlap, and to make one fail. The real
 * `fdatasync` behind the same writer is exercised by test/storage/sqlite.test.ts (durable after a reopen). The stand-in
 * is test/helpers/held-syncs.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { syncsHeldOpen, turn } from '../helpers/held-syncs.js';

describe('group commit under FULL', () => {
  describe('answering', () => {
    it('answers a durable write only once a sync that began after its commit has ended', async () => {
      const w = syncsHeldOpen();
      void w.write(1);
      await turn();
      expect(w.syncs).toHaveLength(1);
      expect(w.syncs[0]!.rows).toBe(1);
      await turn();
      expect(w.state(1)).toBe('pending');
      w.syncs[0]!.end();
      await turn();
      expect(w.state(1)).toBe('resolved');
    });

    it('answers a write that needs no sync at its commit, while a sync is still running', async () => {
      const w = syncsHeldOpen({ syncSpacingMs: 60_000 });
      void w.write(1);
      await turn();
      void w.write(2, false);
      await turn();
      expect(w.state(2)).toBe('resolved');
      expect(w.state(1)).toBe('pending');
      expect(w.rows()).toBe(2);
    });
  });

  describe('sharing syncs', () => {
    it('holds the durable writes that arrive while a sync runs, and commits them together when the next sync may begin', async () => {
      const w = syncsHeldOpen({ syncSpacingMs: 40 });
      void w.write(1);
      await turn();
      for (const n of [2, 3, 4]) {
        void w.write(n);
        await turn();
      }
      expect(w.rows()).toBe(1);
      expect(w.commits()).toBe(1);
      w.syncs[0]!.end();
      await turn();
      expect(w.state(1)).toBe('resolved');
      // The sync ended sooner than the spacing: the next begins when the spacing is over, for all three at once.
      expect(w.syncs).toHaveLength(1);
      await sleep(60);
      expect(w.commits()).toBe(2);
      expect(w.syncs).toHaveLength(2);
      expect(w.syncs[1]!.rows).toBe(4);
      w.syncs[1]!.end();
      await turn();
      expect([2, 3, 4].map(w.state)).toEqual(['resolved', 'resolved', 'resolved']);
    });

    it('begins a second sync beside a slow one, on the other descriptor, and never a third', async () => {
      const w = syncsHeldOpen({ syncSpacingMs: 20 });
      void w.write(1);
      await turn();
      await sleep(30);
      void w.write(2);
      await turn();
      expect(w.syncs.map((s) => [s.lane, s.rows])).toEqual([[0, 1], [1, 2]]);
      await sleep(30);
      void w.write(3);
      await turn();
      expect(w.syncs).toHaveLength(2);
      expect(w.rows()).toBe(2);
      // The later sync covers the earlier one's commit too: both are answered, though the first has not ended.
      w.syncs[1]!.end();
      await turn();
      expect([1, 2, 3].map(w.state)).toEqual(['resolved', 'resolved', 'pending']);
      // One lane is free again (the first sync still runs on lane 0): the queued write gets its sync on lane 1.
      expect(w.syncs.map((s) => [s.lane, s.rows])).toEqual([[0, 1], [1, 2], [1, 3]]);
      w.syncs[0]!.end();
      w.syncs[2]!.end();
      await turn();
      expect(w.state(3)).toBe('resolved');
    });
  });

  describe('a failed sync', () => {
    it('fails every write not yet answered: those it covered, those another sync covers, those committed since', async () => {
      const w = syncsHeldOpen();
      void w.write(1);
      await turn();
      void w.write(2);
      await turn();
      expect(w.syncs).toHaveLength(2);
      // Both lanes busy: the durable write waits in the queue, then rides along with one answered at commit.
      void w.write(3);
      void w.write(4, false);
      await turn();
      expect(w.state(4)).toBe('resolved');
      expect(w.rows()).toBe(4);
      w.syncs[0]!.fail('EIO');
      await turn();
      expect([1, 2, 3].map(w.state)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(String(w.error(1))).toMatch(/could not sync its write-ahead log \(EIO: i\/o error, fdatasync\); mend the disk and reboot the host before starting the service again/);
      // The other sync ending well proves nothing after a failure: what it covered stays failed.
      w.syncs[1]!.end();
      await turn();
      expect(w.state(2)).toBe('rejected');
    });

    it('fails every later write, durable or not, and says so to a caller that checks first', async () => {
      const w = syncsHeldOpen();
      void w.write(1);
      await turn();
      w.syncs[0]!.fail('ENOSPC');
      await turn();
      await expect(w.write(2)).rejects.toThrow(/could not sync its write-ahead log \(ENOSPC/);
      await expect(w.write(3, false)).rejects.toThrow(/could not sync its write-ahead log/);
      expect(() => w.writer.check()).toThrow(/mend the disk and reboot the host/);
      expect(w.rows()).toBe(1);
      expect(w.syncs).toHaveLength(1);
    });
  });

  describe('drain', () => {
    it('commits what is queued without waiting out the spacing, and resolves once every sync has ended', async () => {
      const w = syncsHeldOpen({ syncSpacingMs: 60_000 });
      void w.write(1);
      await turn();
      void w.write(2);
      await turn();
      expect(w.rows()).toBe(1);
      let drained = false;
      void w.writer.drain().then(() => (drained = true));
      await turn();
      expect(w.rows()).toBe(2);
      expect(w.syncs.map((s) => s.rows)).toEqual([1, 2]);
      w.syncs[1]!.end();
      await turn();
      expect(drained).toBe(false);
      w.syncs[0]!.end();
      await turn();
      expect(drained).toBe(true);
      expect([1, 2].map(w.state)).toEqual(['resolved', 'resolved']);
    });
  });
});
