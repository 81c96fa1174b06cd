/**
 * The rules of the policy cross-check (`--policies DIR --repository owner/name`): the trust policy's workflow pins
 * must name workflows that exist, that run on the rule's events, and — for production — that pass the error rules.
 */
import type { RuleMeta } from '../types.js';

export const policyWorkflowMissing: RuleMeta = {
  id: 'DSTS301',
  name: 'policy-workflow-missing',
  severity: 'error',
  summary: "A job_workflow_ref or workflow_ref pin of a rule bound to the repository names no workflow file in the checked directory.",
  why: 'A pin that matches no file grants nothing today, and grants to whatever file is later created under that name: the policy and the workflows have drifted apart.',
  fix: 'Correct the pin to owner/repo/.github/workflows/<existing file>@refs/heads/<branch> (globs allowed), or add the workflow.',
};

export const policyWorkflowEvents: RuleMeta = {
  id: 'DSTS302',
  name: 'policy-workflow-events',
  severity: 'error',
  summary: "A rule's pinned workflows do not run on its events: a pinned file runs on none of the rule's event_name values, or an event_name value is run by none of them.",
  why: 'The rule cannot match as written: deploys fail with a denial, and the mismatch usually means the policy was written for another workflow than the one that deploys.',
  fix: "Make the pinned workflow's on: include the rule's event_name values (a reusable workflow counts its callers' events), or correct the rule's event_name or pins.",
};

export const previewRuleUnpinned: RuleMeta = {
  id: 'DSTS303',
  name: 'preview-rule-unpinned',
  severity: 'warning',
  summary: 'A preview rule bound to the repository pins no workflow (neither job_workflow_ref nor workflow_ref).',
  why: 'Any workflow in the repository that runs on the rule\'s events — including one added by a later, less careful pull request — can then mint preview tokens.',
  fix: 'Add job_workflow_ref: owner/repo/.github/workflows/<preview workflow>.yml@refs/heads/<default branch> to the rule.',
};

export const productionWorkflowUnsafe: RuleMeta = {
  id: 'DSTS304',
  name: 'production-workflow-unsafe',
  severity: 'error',
  summary: 'A production rule pins a workflow that has an error-level finding (its own or one in a workflow it calls).',
  why: 'The policy trusts that workflow with production; a pwn request, script injection, cache or build step in it hands production deploy tokens to code you did not review.',
  fix: 'Fix the findings listed for the pinned workflow (see the rules they name) and run the check again.',
};

export const POLICY_RULES: readonly RuleMeta[] = [policyWorkflowMissing, policyWorkflowEvents, previewRuleUnpinned, productionWorkflowUnsafe];
