/**
 * `npm run bench:disk`: this disk's floor for a durable answer, without the service (BENCHMARKS.md, issue 14, session
 * 6). "Exchanges" arrive at BENCH_DISK_RATE per second (default 2,200, the open loop's rate), WAL-like frames are
 * written for them in place in a 64 MiB file, and syncs begin by the group commit's rules (storage/group-commit.ts:
 * at least SYNC_SPACING_MS apart, at most two in flight, each on its own descriptor; a sync answers what it covers
 * and what the syncs begun before it cover). Unless BENCH_DISK_CHECKPOINT=0, a checkpoint-like write of
 * BENCH_DISK_CHECKPOINT_PAGES pages (default 60) to a second file and its sync come every 500 ms. Prints the latency from each arrival to the end of the sync covering
 * it: what no code on this machine can answer a durable write faster than. Run it under the shared lock.
 */
import { fdatasync, fsync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYNC_SPACING_MS } from '../exchange-service/storage/group-commit.js';
import { round, summarise } from './stats.js';

const rate = Number(process.env.BENCH_DISK_RATE ?? 2200);
const seconds = Number(process.env.BENCH_DISK_SECONDS ?? 8);
const checkpoints = process.env.BENCH_DISK_CHECKPOINT !== '0';
/** Pages each checkpoint writes (the service at 2,200/s adds about 1 KB per exchange to the database: ~250 pages per 500 ms). */
const checkpointPages = Number(process.env.BENCH_DISK_CHECKPOINT_PAGES ?? 60);
if (!Number.isInteger(checkpointPages) || checkpointPages < 1) {
  throw new Error(`BENCH_DISK_CHECKPOINT_PAGES must be a whole number of pages, at least 1, not ${JSON.stringify(process.env.BENCH_DISK_CHECKPOINT_PAGES)}`);
}
/** A WAL frame: a 24-byte header and a 4 KiB page. */
const FRAME = 24 + 4096;
const WAL_BYTES = 64 * 1024 * 1024;

interface Sync {
  lane: 0 | 1;
  /** Arrival times of the exchanges this sync answers (emptied once answered). */
  covered: number[];
}

const dir = mkdtempSync(join(tmpdir(), 'deploy-sts-disk-floor-'));
const wal = openSync(join(dir, 'wal'), 'w+');
ftruncateSync(wal, WAL_BYTES);
const lanes = [openSync(join(dir, 'wal'), 'r'), openSync(join(dir, 'wal'), 'r')] as const;
const database = openSync(join(dir, 'db'), 'w+');
ftruncateSync(database, WAL_BYTES);
const frame = Buffer.alloc(FRAME, 7);
const page = Buffer.alloc(4096, 9);

const latencies: number[] = [];
const inFlight: Sync[] = [];
let waiting: number[] = [];
let offset = 0;
let arrived = 0;
let lastStart = -Infinity;
const started = performance.now();
const end = started + seconds * 1000;

const answer = (sync: Sync, at: number) => {
  for (const arrival of sync.covered) latencies.push(at - arrival);
  sync.covered = [];
};

function pump(): void {
  const now = performance.now();
  const due = Math.floor(((Math.min(now, end) - started) / 1000) * rate);
  for (; arrived < due; arrived++) waiting.push(started + (arrived * 1000) / rate);
  if (waiting.length > 0 && inFlight.length < 2 && now - lastStart >= SYNC_SPACING_MS) {
    // About the service's WAL frames per commit: seven for one exchange, one more per two more (BENCHMARKS.md).
    const frames = Math.min(8, 4 + Math.ceil(waiting.length / 2));
    for (let i = 0; i < frames; i++) {
      writeSync(wal, frame, 0, FRAME, offset);
      offset = (offset + FRAME) % (WAL_BYTES - 2 * FRAME);
    }
    const sync: Sync = { lane: inFlight.length === 0 ? 0 : inFlight[0]!.lane === 0 ? 1 : 0, covered: waiting };
    waiting = [];
    lastStart = now;
    inFlight.push(sync);
    fdatasync(lanes[sync.lane], (error) => {
      if (error) throw error;
      const at = performance.now();
      const index = inFlight.indexOf(sync);
      for (const earlier of inFlight.slice(0, index)) answer(earlier, at);
      answer(sync, at);
      inFlight.splice(index, 1);
    });
  }
  if (now < end || waiting.length > 0 || inFlight.length > 0) setTimeout(pump, 0);
  else report();
}

let pages = 0;
const checkpointTimer = checkpoints
  ? setInterval(() => {
      for (let i = 0; i < checkpointPages; i++) writeSync(database, page, 0, 4096, ((pages++ * 7919) % 16_000) * 4096);
      fsync(database, () => {});
    }, 500)
  : undefined;

function report(): void {
  clearInterval(checkpointTimer);
  const s = summarise(Float64Array.from(latencies));
  process.stdout.write(
    `disk floor at ${rate}/s for ${seconds} s, checkpoints ${checkpoints ? `of ${checkpointPages} pages` : 'off'} (load ${loadavg()[0]!.toFixed(1)}): ` +
      `${latencies.length} durable answers, p50 ${round(s.p50)} p90 ${round(s.p90)} p99 ${round(s.p99)} max ${round(s.max)} ms\n`,
  );
  rmSync(dir, { recursive: true, force: true });
}

pump();
