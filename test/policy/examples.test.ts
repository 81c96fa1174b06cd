/** The example policies are what users copy: they must follow the rules the README states. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPolicyDir } from '../../exchange-service/policy/load.js';
import { evaluate } from '../../exchange-service/policy/match.js';
import { docsClaims } from './fixtures.js';

const EXAMPLES = path.join(import.meta.dirname, '../../examples/policies');
const WF = 'acme/docs/.github/workflows';

describe('examples/policies/docs.yml', () => {
  it('grants previews only through the pinned preview workflows of the default branch', async () => {
    const set = await loadPolicyDir(EXAMPLES);
    const preview = (job_workflow_ref: string, event_name = 'pull_request_target') =>
      evaluate(set, 'docs', docsClaims({ event_name, job_workflow_ref, workflow_ref: job_workflow_ref, environment: undefined }));
    expect(preview(`${WF}/preview.yml@refs/heads/main`)).toMatchObject({ granted: true, context: 'preview', rule: { name: 'previews' } });
    expect(preview(`${WF}/preview-deploy.yml@refs/heads/main`, 'workflow_run')).toMatchObject({ granted: true, context: 'preview' });
    // Any other workflow of the repository (or the preview workflow from another ref) gets nothing.
    expect(preview(`${WF}/ci.yml@refs/heads/main`)).toMatchObject({ granted: false, reason: 'no_rule_matched' });
    expect(preview(`${WF}/preview.yml@refs/heads/feature`)).toMatchObject({ granted: false });
    expect(preview(`${WF}/preview-deploy.yml@refs/pull/7/merge`, 'workflow_run')).toMatchObject({ granted: false });
  });

  it('pins every rule of every example to a workflow', async () => {
    const set = await loadPolicyDir(EXAMPLES);
    for (const file of set.files) {
      for (const rule of file.rules) expect(rule.when.map((c) => c.claim), `${file.file}: ${rule.name}`).toContain('job_workflow_ref');
    }
  });
});
