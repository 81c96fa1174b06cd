/**
 * `serve --pid-file FILE`: the PID of the serving process, for `kill -HUP "$(cat FILE)"` and init systems. Written
 * atomically (a temporary file in the same directory, then rename) once the service listens, so a reader never sees
 * a half-written number; removed when the process exits, unless another process has written its own PID there since.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function writePidFile(file: string, pid: number = process.pid): void {
  const temporary = `${file}.${pid}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(temporary, `${pid}\n`, { mode: 0o644 });
    renameSync(temporary, file);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new Error(`--pid-file ${file}: cannot write the PID file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); choose a writable path (DEPLOY_STS_PID_FILE / --pid-file)`);
  }
}

/** Remove the PID file if it still holds this process's PID. Synchronous: it runs from process 'exit'. */
export function removePidFile(file: string, pid: number = process.pid): void {
  try {
    if (readFileSync(file, 'utf8').trim() === String(pid)) rmSync(file, { force: true });
  } catch {
    // Already gone, or unreadable: nothing of ours to remove.
  }
}
