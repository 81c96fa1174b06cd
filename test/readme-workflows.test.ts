/**
 * The workflow examples in the README are safe as written: a job that checks out or builds pull request code never has
 * `id-token: write`, a job with `id-token: write` never checks out or runs build tools, and every use of the Action
 * passes only inputs that action.yml declares.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/service.js';

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  permissions?: Record<string, string> | string;
  steps?: Step[];
}

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const workflows = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)]
  .map((m) => {
    const indent = /^( *)/.exec(m[1]!)![1]!.length; // blocks inside a list item are indented
    return m[1]!.replace(new RegExp(`^ {${indent}}`, 'gm'), '');
  })
  .filter((text) => /^jobs:/m.test(text))
  .map((text) => parse(text) as { name?: string; on?: unknown; permissions?: unknown; jobs?: Record<string, Job> })
  .filter((doc) => doc && typeof doc === 'object' && 'jobs' in doc);
const actionInputs = Object.keys((parse(readFileSync(join(ROOT, 'action.yml'), 'utf8')) as { inputs: Record<string, unknown> }).inputs);

const hasIdToken = (job: Job) => typeof job.permissions === 'object' && job.permissions['id-token'] === 'write';
const runsCode = (job: Job) =>
  (job.steps ?? []).some((s) => s.uses?.startsWith('actions/checkout') || /\bnpm (ci|install|run)\b/.test(s.run ?? ''));

describe('the README workflows', () => {
  it('are there: a quick start, production, pull_request_target and workflow_run previews', () => {
    expect(workflows.length).toBeGreaterThanOrEqual(4);
    const triggers = workflows.map((w) => JSON.stringify(w.on));
    expect(triggers.some((t) => t.includes('pull_request_target'))).toBe(true);
    expect(triggers.some((t) => t.includes('workflow_run'))).toBe(true);
  });

  for (const workflow of workflows) {
    describe(`workflow ${workflow.name ?? '(unnamed)'}`, () => {
      it('never gives id-token to a job that checks out or builds code', () => {
        for (const [name, job] of Object.entries(workflow.jobs!)) {
          if (hasIdToken(job) && runsCode(job)) {
            // Only a trusted push/dispatch workflow may build and deploy in one job.
            expect(JSON.stringify(workflow.on), `job ${name}`).not.toMatch(/pull_request|workflow_run/);
          }
        }
      });

      it('asks for id-token: write wherever it uses the Action, and passes only declared inputs', () => {
        for (const job of Object.values(workflow.jobs!)) {
          for (const step of job.steps ?? []) {
            if (!step.uses?.startsWith('deploy-sts/deploy-sts')) continue;
            expect(hasIdToken(job)).toBe(true);
            for (const key of Object.keys(step.with ?? {})) expect(actionInputs).toContain(key);
          }
        }
      });
    });
  }
});
