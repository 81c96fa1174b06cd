/** Every workflow rule, in id order. Ids are stable: a retired rule's id is never reused. */
import { artifactExecution } from './artifact-execution.js';
import { buildInPrivilegedJob } from './build-in-privileged-job.js';
import { cacheInPrivilegedJob } from './cache-in-privileged-job.js';
import { checkoutPersistsCredentials } from './checkout-persists-credentials.js';
import { prCodeInPrivilegedJob } from './pr-code-in-privileged-job.js';
import { pullRequestTargetUngated } from './pull-request-target-ungated.js';
import type { WorkflowRule } from './rule.js';
import { unpinnedAction } from './unpinned-action.js';
import { untrustedExpression } from './untrusted-expression.js';
import { workflowPermissions } from './workflow-permissions.js';
import { workflowRunUnchecked } from './workflow-run-unchecked.js';

export const WORKFLOW_RULES: readonly WorkflowRule[] = [
  prCodeInPrivilegedJob,
  artifactExecution,
  buildInPrivilegedJob,
  untrustedExpression,
  cacheInPrivilegedJob,
  unpinnedAction,
  checkoutPersistsCredentials,
  workflowPermissions,
  workflowRunUnchecked,
  pullRequestTargetUngated,
];
