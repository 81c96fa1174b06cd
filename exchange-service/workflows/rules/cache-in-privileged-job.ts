/**
 * DSTS105: a privileged job restores a cache. Caches are shared across a repository's runs; a pull request's run
 * (or anything that could write the cache) can plant files that the deploy job then executes or ships.
 */
import type { Hit } from '../types.js';
import { actionRef, isFalse, jobLabel, stepLabel, type JobContext, type WorkflowRule } from './rule.js';

/** setup-* actions that restore a cache by default unless told `cache: false`. */
const CACHE_BY_DEFAULT = new Set(['actions/setup-go']);

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
      const cacheInput = step.with.get('cache');
      let restores = false;
      if (ref.name === 'actions/cache' || ref.name.startsWith('actions/cache/')) restores = !ref.name.endsWith('/save');
      else if (/^[^/]+\/setup-[^/]+$/.test(ref.name)) {
        restores = cacheInput ? cacheInput.value.trim() !== '' && !isFalse(cacheInput) : CACHE_BY_DEFAULT.has(ref.name);
      }
      if (!restores) continue;
      hits.push({
        file: ctx.workflow.file,
        at: cacheInput && !ref.name.startsWith('actions/cache') ? cacheInput.pos : step.uses.pos,
        what: `${jobLabel(ctx)} ${ctx.privilege}, and ${stepLabel(step)} restores a cache (${cacheInput ? `cache: ${cacheInput.value}` : ref.name})`,
      });
    }
    return hits;
  },
};
