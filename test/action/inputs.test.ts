import { describe, expect, it } from 'vitest';
import { ActionError } from '../../action/errors.js';
import { parseBoolean, parseExportEnv, parseInputs, parseScope, parseSite } from '../../action/inputs.js';

function reader(values: Record<string, string>) {
  return (name: string) => (values[name] ?? '').trim();
}

function refusal(fn: () => unknown): ActionError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ActionError);
    return error as ActionError;
  }
  throw new Error('expected a refusal');
}

describe('inputs', () => {
  it('needs only url and site; the rest has defaults', () => {
    const inputs = parseInputs(reader({ url: 'https://sts.example.com', site: 'docs' }));
    expect(inputs.url.href).toBe('https://sts.example.com/');
    expect(inputs.site).toBe('docs');
    expect(inputs.scope).toEqual([]);
    expect(inputs.audience).toBeUndefined();
    expect(inputs.exportEnv).toBeUndefined();
    expect(inputs.revoke).toBe(true);
  });

  it('reads every input', () => {
    const inputs = parseInputs(
      reader({ url: 'https://sts.example.com/', site: 'docs', scope: 'deploy:write', audience: 'https://aud.example', 'export-env': 'DEPLOY_TOKEN', revoke: 'false' }),
    );
    expect(inputs).toMatchObject({ site: 'docs', scope: ['deploy:write'], audience: 'https://aud.example', exportEnv: 'DEPLOY_TOKEN', revoke: false });
  });

  it('names the missing input and what to put there', () => {
    const noUrl = refusal(() => parseInputs(reader({ site: 'docs' })));
    expect(noUrl.code).toBe('invalid_input');
    expect(noUrl.render()).toContain('Input `url` is required');
    const noSite = refusal(() => parseInputs(reader({ url: 'https://sts.example.com' })));
    expect(noSite.render()).toContain('Input `site` is required');
    expect(noSite.fix).toContain('slug');
  });

  it('refuses an insecure url before anything else happens', () => {
    expect(refusal(() => parseInputs(reader({ url: 'http://sts.example.com', site: 'docs' }))).code).toBe('insecure_url');
  });
});

describe('site', () => {
  it('accepts slugs', () => {
    for (const slug of ['docs', 'my-site', 'site.v2', 'a', 'A_b-9']) expect(parseSite(slug)).toBe(slug);
  });
  it('refuses anything that could change the resource it names', () => {
    for (const bad of ['docs blog', 'site:docs', '../docs', '-docs', 'docs-', 'x'.repeat(200), 'döcs']) {
      expect(refusal(() => parseSite(bad)).code).toBe('invalid_input');
    }
  });
});

describe('scope', () => {
  it('splits on spaces and commas and drops duplicates', () => {
    expect(parseScope('deploy:write, deploy:read  preview:write,deploy:write')).toEqual(['deploy:write', 'deploy:read', 'preview:write']);
  });
  it('is empty when unset (everything the rule grants)', () => {
    expect(parseScope('')).toEqual([]);
    expect(parseScope(' , ')).toEqual([]);
  });
  it('refuses a malformed permission, naming it', () => {
    const error = refusal(() => parseScope('deploy:write "quoted"'));
    expect(error.problem).toContain('"\\"quoted\\""');
  });
});

describe('revoke', () => {
  it('reads YAML booleans and defaults to true', () => {
    expect(parseBoolean('revoke', '', true)).toBe(true);
    for (const t of ['true', 'True', 'TRUE']) expect(parseBoolean('revoke', t, false)).toBe(true);
    for (const f of ['false', 'False', 'FALSE']) expect(parseBoolean('revoke', f, true)).toBe(false);
  });
  it('refuses anything else', () => {
    const error = refusal(() => parseBoolean('revoke', 'yes', true));
    expect(error.fix).toBe('Set `revoke: true` or `revoke: false`.');
  });
});

describe('export-env', () => {
  it('accepts a variable name of your own', () => {
    expect(parseExportEnv('DEPLOY_TOKEN')).toBe('DEPLOY_TOKEN');
    expect(parseExportEnv('')).toBeUndefined();
  });
  it('refuses names that are not variable names', () => {
    for (const bad of ['1TOKEN', 'DEPLOY-TOKEN', 'A B', 'X=Y']) expect(refusal(() => parseExportEnv(bad)).code).toBe('invalid_input');
  });
  it('refuses variables the runner or Node.js interprets', () => {
    for (const reserved of ['GITHUB_TOKEN', 'github_env', 'RUNNER_TEMP', 'ACTIONS_RUNTIME_TOKEN', 'NODE_OPTIONS', 'PATH', 'LD_PRELOAD', 'INPUT_URL']) {
      expect(refusal(() => parseExportEnv(reserved)).problem).toContain('interprets');
    }
  });
});
