import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ActionError } from '../../action/errors.js';
import { parseBoolean, parseExportEnv, parseInputs, parseScope, parseSite } from '../../action/inputs.js';
import { PERMISSIONS } from '../../exchange-service/policy/permissions.js';
import { SLUG } from '../../exchange-service/policy/schema.js';

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
    // `docs-` is a slug to the service too (policies and /token use the same rule).
    for (const slug of ['docs', 'my-site', 'a', 'b9', 'docs-', 'x'.repeat(63)]) expect(parseSite(slug)).toBe(slug);
  });
  it('refuses anything that could change the resource it names', () => {
    for (const bad of ['docs blog', 'site:docs', '../docs', '-docs', 'x'.repeat(200), 'döcs']) {
      expect(refusal(() => parseSite(bad)).code).toBe('invalid_input');
    }
  });
  it('refuses what the service would refuse, so a typo fails before any request', () => {
    for (const bad of ['site.v2', 'A_b-9', 'Docs', 'my_site', 'x'.repeat(64)]) {
      const error = refusal(() => parseSite(bad));
      expect(error.code).toBe('invalid_input');
      expect(error.fix).toContain('lowercase letters, digits and `-`');
    }
  });
  it("accepts exactly the service's slugs", () => {
    const chars = fc.constantFrom(...'abcxyz0189-_.A Z:/'.split(''));
    fc.assert(
      fc.property(fc.array(chars, { minLength: 1, maxLength: 70 }), (parts) => {
        const slug = parts.join('').trim();
        if (slug === '') return;
        let accepted = true;
        try {
          parseSite(slug);
        } catch {
          accepted = false;
        }
        expect(accepted).toBe(SLUG.test(slug));
      }),
    );
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
  it('accepts every permission the service knows', () => {
    expect(parseScope(PERMISSIONS.join(' '))).toEqual([...PERMISSIONS]);
  });
  it('refuses what is not `resource:action` in lowercase', () => {
    for (const bad of ['Deployments:write', 'deployments:WRITE', 'deployments', 'deployments:write:all', 'deployments.write', 'deploy-ments:write', 'deployments:*', 'a/b:c']) {
      expect(refusal(() => parseScope(bad)).problem, bad).toContain('invalid permission');
    }
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
  it('accepts only upper-case names', () => {
    for (const bad of ['deploy_token', 'Deploy_Token']) expect(refusal(() => parseExportEnv(bad)).problem).toContain('not an environment variable name');
    for (const ok of ['DEPLOY_TOKEN', '_TOKEN', 'TOKEN2']) expect(parseExportEnv(ok)).toBe(ok);
  });
  it('refuses variables that shells, runtimes and tools read as code, paths or proxies', () => {
    const reserved = [
      'NODE_EXTRA_CA_CERTS', 'LD_LIBRARY_PATH', 'DYLD_INSERT_LIBRARIES', 'GIT_SSH_COMMAND', 'GIT_ASKPASS', 'SSH_AUTH_SOCK',
      'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'PYTHONPATH', 'PYTHONSTARTUP', 'PERL5OPT', 'PERL5LIB', 'RUBYOPT',
      'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'BASH_ENV', 'ENV', 'PROMPT_COMMAND',
      'PS4', 'SHELLOPTS', 'BASHOPTS', 'IFS', 'SHELL', 'TMPDIR', 'HOME', 'CI', 'https_proxy',
    ];
    for (const name of reserved) {
      const error = refusal(() => parseExportEnv(name));
      expect(error.problem, name).toContain('interprets');
      expect(error.fix).toContain('DEPLOY_TOKEN');
    }
  });
  it('refuses variables the runner or Node.js interprets', () => {
    for (const reserved of ['GITHUB_TOKEN', 'github_env', 'RUNNER_TEMP', 'ACTIONS_RUNTIME_TOKEN', 'NODE_OPTIONS', 'PATH', 'LD_PRELOAD', 'INPUT_URL']) {
      expect(refusal(() => parseExportEnv(reserved)).problem).toContain('interprets');
    }
  });
});
