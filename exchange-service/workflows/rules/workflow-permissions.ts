/**
 * DSTS203: no `permissions:` at workflow level (every job gets the repository's default GITHUB_TOKEN rights, which
 * may be read-write), or `write-all` at workflow or job level.
 */
import type { Workflow } from '../model.js';
import type { Hit } from '../types.js';
import type { JobContext, WorkflowRule } from './rule.js';

export const workflowPermissions: WorkflowRule = {
  id: 'DSTS203',
  name: 'workflow-permissions',
  severity: 'warning',
  summary: 'The workflow has no top-level permissions: (or has write-all), or a job has permissions: write-all.',
  why: 'Without permissions: every job gets the repository\'s default token rights (read-write in many repositories), and write-all also grants id-token: write to every job: a job you did not mean to privilege can mint deploy tokens and push code.',
  fix: 'Declare permissions: {} (or contents: read) at the top of the workflow, and grant each job only what it needs — id-token: write only to the deploy job.',
  checkWorkflow(workflow: Workflow, contexts: readonly JobContext[]): Hit[] {
    const hits: Hit[] = [];
    if (!workflow.permissions) {
      hits.push({ file: workflow.file, at: workflow.onPos, what: 'the workflow declares no top-level permissions:' });
    } else if (workflow.permissions.kind === 'write-all') {
      hits.push({ file: workflow.file, at: workflow.permissions.pos, what: 'the workflow grants permissions: write-all to every job' });
    }
    const seen = new Set<string>();
    for (const ctx of contexts) {
      if (ctx.workflow !== workflow || seen.has(ctx.job.id)) continue;
      seen.add(ctx.job.id);
      if (ctx.job.permissions?.kind === 'write-all') hits.push({ file: workflow.file, at: ctx.job.permissions.pos, what: `job "${ctx.job.id}" has permissions: write-all` });
    }
    return hits;
  },
};
