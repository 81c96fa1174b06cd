/** `deploy-sts policy check`: a directory or one file; warnings for conditions that can never match. */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { EXAMPLE_POLICIES, tempDir } from '../helpers/service.js';
import { docsSite, previewRule, toYaml } from '../policy/fixtures.js';

const work = tempDir('deploy-sts-policy-check-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('deploy-sts policy check', () => {
  it('accepts one file as well as a directory', async () => {
    const r = await cli(['policy', 'check', join(EXAMPLE_POLICIES, 'docs.yml')]);
    expect(r.stdout).toMatch(/^ok: 1 policy file \(1 site, 0 org\)/);
    expect(r.code).toBe(0);
  });

  it('says which file it cannot read', async () => {
    const r = await cli(['policy', 'check', join(work, 'nope.yml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the policies directory does not exist');
  });

  it('warns, at file:line:column, about conditions that can never match, and still exits 0', async () => {
    const dir = join(work, 'warn');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'docs.yml'),
      toYaml(
        docsSite({
          rules: [
            previewRule({
              when: {
                event_name: ['pull_request_target', 'pul_request'],
                ref: 'main',
                environment: 'preview ',
                job_workflow_ref: 'acme/docs/.github/workflows/preview.yml',
              },
            }),
          ],
        }),
      ),
    );
    const r = await cli(['policy', 'check', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok: .*; 4 warnings: conditions that can never match \(above\)/);
    const warnings = r.stderr.split('\n').filter(Boolean);
    expect(warnings).toHaveLength(4);
    for (const w of warnings) expect(w).toMatch(new RegExp(`^warning: ${join(dir, 'docs.yml').replaceAll('.', '\\.')}:\\d+:\\d+: rules\\[0\\] \\("previews"\\): `));
    expect(r.stderr).toContain('event_name "pul_request" is not an event GitHub sends (did you mean "pull_request"?)');
    expect(r.stderr).toContain('ref "main" never matches');
    expect(r.stderr).toContain('environment "preview " never matches');
    expect(r.stderr).toContain('job_workflow_ref "acme/docs/.github/workflows/preview.yml" never matches');
  });
});
