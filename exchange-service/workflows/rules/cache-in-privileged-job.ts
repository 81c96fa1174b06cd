/**
 * DSTS105: a privileged job restores a cache. Caches are shared across a repository's runs; a pull request's run
 * (or anything that could write the cache) can plant files that the deploy job then executes or ships.
 */
import type { Hit } from '../types.js';
import { actionRef, isFalse, jobLabel, stepLabel, type JobContext, type WorkflowRule } from './rule.js';

/** setup-* actions that restore a cache by default unless told `cache: false`. */
const CACHE_BY_DEFAULT = new Set(['actions/setup-go']);
/** actions/cache's drop-in replacements (their `/save` sub-action only saves). */
const CACHE_ACTIONS = ['actions/cache', 'buildjet/cache', 'runs-on/cache', 'useblacksmith/cache'];
/** Other actions that restore a cache: the input that turns it on (or off), and whether it is on by default. */
const CACHING_ACTIONS: Record<string, { input: string; on: 'true' | 'false'; byDefault: boolean }> = {
  'ruby/setup-ruby': { input: 'bundler-cache', on: 'true', byDefault: false },
  'astral-sh/setup-uv': { input: 'enable-cache', on: 'true', byDefault: true },
  'gradle/actions/setup-gradle': { input: 'cache-disabled', on: 'false', byDefault: true },
  'gradle/gradle-build-action': { input: 'cache-disabled', on: 'false', byDefault: true },
  'swatinem/rust-cache': { input: 'lookup-only', on: 'false', byDefault: true },
  'jdx/mise-action': { input: 'cache', on: 'true', byDefault: true },
  'determinatesystems/magic-nix-cache-action': { input: 'use-gha-cache', on: 'true', byDefault: true },
};

export const cacheInPrivilegedJob: WorkflowRule = {
  id: 'DSTS105',
  name: 'cache-in-privileged-job',
  severity: 'error',
  jobs: 'privileged',
  summary: 'A job that holds id-token: write or uses the deploy-sts Action restores a cache (actions/cache, or a setup-* action with cache:).',
  why: 'Caches are shared between runs of the repository, pull requests included: poisoned cache contents (dependencies, build outputs, tools) would run or be deployed with the job\'s OIDC token (cache poisoning).',
  fix: 'Remove the cache from the privileged job (drop actions/cache and the cache: input, or set cache: false on setup-go); cache in the build job that has no id-token and hand its output over as an artifact.',
  checkJob(ctx: JobContext): Hit[] {
    const hits: Hit[] = [];
    for (const step of ctx.job.steps) {
      if (!step.uses) continue;
      const ref = actionRef(step.uses.value);
      if (ref.kind !== 'remote') continue;
      let cacheInput = step.with.get('cache');
      let restores = false;
      const other = CACHING_ACTIONS[ref.name];
      if (CACHE_ACTIONS.some((a) => ref.name === a || ref.name.startsWith(`${a}/`))) restores = !ref.name.endsWith('/save');
      else if (other) {
        cacheInput = step.with.get(other.input);
        const value = cacheInput?.value.trim().toLowerCase();
        restores = value === undefined || value === '' || value === 'auto' ? other.byDefault : value === other.on;
      } else if (/^[^/]+\/setup-[^/]+$/.test(ref.name)) {
        restores = cacheInput ? cacheInput.value.trim() !== '' && !isFalse(cacheInput) : CACHE_BY_DEFAULT.has(ref.name);
      }
      if (!restores) continue;
      hits.push({
        file: ctx.workflow.file,
        at: cacheInput && !CACHE_ACTIONS.some((a) => ref.name.startsWith(a)) ? cacheInput.pos : step.uses.pos,
        what: `${jobLabel(ctx)} ${ctx.privilege}, and ${stepLabel(step)} restores a cache (${cacheInput ? `${other?.input ?? 'cache'}: ${cacheInput.value}` : ref.name})`,
      });
    }
    return hits;
  },
};
