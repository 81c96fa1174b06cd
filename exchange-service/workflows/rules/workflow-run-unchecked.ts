/**
 * DSTS204: a `workflow_run` trigger without a `workflows:` filter, or a privileged job it starts that never checks
 * `github.event.workflow_run.event` — so it cannot tell a fork's pull request run from a push to main.
 */
import type { Workflow } from '../model.js';
import type { Hit } from '../types.js';
import { jobLabel, type JobContext, type WorkflowRule } from './rule.js';

const CHECKS_EVENT = /github\.event\.workflow_run\.event\b/;

export const workflowRunUnchecked: WorkflowRule = {
  id: 'DSTS204',
  name: 'workflow-run-unchecked',
  severity: 'warning',
  summary: 'A workflow_run trigger without workflows:, or a privileged job on workflow_run whose if: (or a job it needs) never checks github.event.workflow_run.event.',
  why: 'workflow_run runs with the base repository\'s privileges after any run of the named workflows, including pull requests from forks; a job that does not check which event started that run treats a fork\'s artifacts and branch names like a trusted push.',
  fix: "List the triggering workflows (workflow_run: workflows: [build]) and gate the privileged job on the event it expects, e.g. if: github.event.workflow_run.event == 'pull_request' && github.event.workflow_run.conclusion == 'success'.",
  checkWorkflow(workflow: Workflow, contexts: readonly JobContext[]): Hit[] {
    const trigger = workflow.triggers.find((t) => t.event === 'workflow_run');
    if (!trigger) return [];
    const hits: Hit[] = [];
    if (!trigger.workflows || trigger.workflows.length === 0) {
      hits.push({ file: workflow.file, at: trigger.pos, what: 'the workflow_run trigger names no workflows:' });
    }
    for (const ctx of contexts) {
      if (ctx.workflow !== workflow || !ctx.privilege) continue;
      const gates = [ctx.job, ...ctx.ancestors].some((j) => j.if !== undefined && CHECKS_EVENT.test(j.if.value));
      if (!gates) hits.push({ file: workflow.file, at: ctx.job.pos, what: `${jobLabel(ctx)} ${ctx.privilege} on workflow_run, and neither its if: nor a job it needs checks github.event.workflow_run.event` });
    }
    return hits;
  },
};
