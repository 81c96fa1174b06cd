/**
 * Shared set-up of the serving lock's attack suites (attack-data-dir-lock*.test.ts): a test issuer, `serve` processes
 * on temporary data directories (stopped and removed after each test), and what they answer to one token.
 */
import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { exchangeToken, spawnService, tempDir, type SpawnedService } from '../helpers/service.js';
import { NO_RATE_LIMITS } from './support.js';

export { DATABASE_FILE } from '../../exchange-service/storage/data-dir-lock.js';
export const ENV = { ...NO_RATE_LIMITS, DEPLOY_STS_SYNCHRONOUS: 'FULL' };

export interface ServingProcesses {
  issuer(): TestIssuer;
  /** A temporary directory, removed after the test. */
  dir(prefix?: string): string;
  /** Removes `path` (a link the test made) after the test. */
  remember(path: string): void;
  /** `serve` on `dataDir`: the process when it started, or the reason it gave for not starting. */
  serve(dataDir: string): Promise<SpawnedService | string>;
  /** `serve` on `dataDir`, which must start. */
  serving(dataDir: string): Promise<SpawnedService>;
  /** One fresh token sent to the first process, then to the second: the two statuses. */
  grantsAcross(a: SpawnedService, b: SpawnedService): Promise<number[]>;
  /**
   * `serve` on `dataDir` while `first` serves the same database: it must refuse to start, saying why (and had it
   * started, one token must not be granted by both).
   */
  refusedBeside(first: SpawnedService, dataDir: string): Promise<void>;
}

export function useServingProcesses(prefix = 'deploy-sts-lock-'): ServingProcesses {
  let issuer: TestIssuer | undefined;
  const dirs: string[] = [];
  const running: SpawnedService[] = [];
  beforeAll(async () => {
    issuer = await startIssuer();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop()));
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await issuer?.close();
  });
  const self: ServingProcesses = {
    issuer: () => issuer!,
    dir(own = prefix) {
      const made = tempDir(own);
      dirs.push(made);
      return made;
    },
    remember(path) {
      dirs.push(path);
    },
    async serve(dataDir) {
      try {
        const started = await spawnService({ issuer: issuer!.url, dataDir, env: ENV });
        running.push(started);
        return started;
      } catch (error) {
        return String(error);
      }
    },
    async serving(dataDir) {
      const started = await self.serve(dataDir);
      if (typeof started === 'string') throw new Error(`serve on ${dataDir} did not start: ${started}`);
      return started;
    },
    async grantsAcross(a, b) {
      const token = await issuer!.token();
      const first = await exchangeToken(a.url, token);
      const second = await exchangeToken(b.url, token);
      return [first.status, second.status];
    },
    async refusedBeside(first, dataDir) {
      const second = await self.serve(dataDir);
      if (typeof second === 'object') {
        expect(await self.grantsAcross(first, second), 'one token, two processes on one database').not.toEqual([200, 200]);
      }
      expect(second, 'a second serve started on the database the first serves').toEqual(expect.stringContaining('another deploy-sts serve'));
    },
  };
  return self;
}
