/**
 * The policy set in force: loaded from a directory at start-up, replaced by `reload` (SIGHUP, the directory watch)
 * only when every file validates and the directory reads the same twice, a short interval apart — on any error the
 * previous set stays in force. One reload runs at a time.
 */
import { watch, type FSWatcher } from 'node:fs';
import { DEFAULT_LOAD_OPTIONS, checkPoliciesSettled, loadPolicyDir, type PolicyLoadOptions } from './load.js';
import { PolicyLoadError, type PolicySet } from './types.js';

export type ReloadResult = { ok: true; sites: number; files: number } | { ok: false; error: PolicyLoadError };

export interface LivePolicies {
  /** The set in force now. */
  current(): PolicySet;
  /** Re-read the directory; the old set stays in force on any error. */
  reload(): Promise<ReloadResult>;
  /** Reload (debounced) whenever the directory changes; `onError` hears when it cannot be watched. */
  watch(onError: (message: string, error: Error) => void): void;
  /** Stop watching the directory. */
  close(): void;
}

export interface LivePolicyOptions {
  /** Told about every reload's result (metrics, logs). */
  onReload?(result: ReloadResult): void;
  /** The issuers the policies may bind (default: GitHub's only). */
  load?: PolicyLoadOptions;
}

const DEBOUNCE_MS = 300;

/** Load the directory (throws PolicyLoadError listing every problem) and keep it in force. */
export async function openLivePolicies(dir: string, options: LivePolicyOptions): Promise<LivePolicies> {
  const load = options.load ?? DEFAULT_LOAD_OPTIONS;
  let policies = await loadPolicyDir(dir, load);
  let reloading: Promise<unknown> = Promise.resolve();

  const reload = (): Promise<ReloadResult> => {
    const run = reloading.then(async (): Promise<ReloadResult> => {
      let result: ReloadResult;
      try {
        // The directory must read the same twice, a short interval apart: a file caught mid-write is never loaded.
        const checked = await checkPoliciesSettled(dir, load);
        if (checked.ok) {
          policies = checked.set;
          result = { ok: true, sites: policies.siteCount(), files: policies.files.length };
        } else {
          result = { ok: false, error: new PolicyLoadError(checked.problems) };
        }
      } catch (error) {
        result = { ok: false, error: new PolicyLoadError([{ file: dir, line: 0, column: 0, message: (error as Error).message }]) };
      }
      options.onReload?.(result);
      return result;
    });
    reloading = run;
    return run;
  };

  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  const startWatching = (onError: (message: string, error: Error) => void): void => {
    if (watcher) return;
    try {
      watcher = watch(dir, () => {
        clearTimeout(debounce);
        debounce = setTimeout(() => void reload(), DEBOUNCE_MS);
      });
      watcher.on('error', (error) => onError('policy directory watch failed; SIGHUP still reloads', error));
    } catch (error) {
      onError('cannot watch the policy directory; SIGHUP still reloads', error as Error);
    }
  };

  return {
    current: () => policies,
    reload,
    watch: startWatching,
    close() {
      watcher?.close();
      clearTimeout(debounce);
    },
  };
}
