/**
 * The conventions every CLI user types without thinking: --help/-h on every verb, --version, a verb with sub-verbs
 * typed alone, exit statuses (0 ok, 1 failure, 2 usage), "did you mean" for verbs, flags, policy keys, sites and
 * claim names, DEPLOY_STS_* typos, dev token shortcuts, snake_case JSON and header rows.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../exchange-service/cli/program.js';
import { OPTION_NAMES } from '../../exchange-service/config.js';
import { cli } from '../helpers/cli.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { EXAMPLE_POLICIES, ROOT, exchangeToken, startService, tempDir, type TestService } from '../helpers/service.js';

const work = tempDir('deploy-sts-conventions-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Every verb and sub-verb, as the words typed: [['serve'], ['policy'], ['policy', 'check'], …]. */
function verbs(): string[][] {
  const program = buildProgram({ env: {}, run: async () => {} });
  const out: string[][] = [];
  const walk = (command: Command, path: string[]) => {
    for (const sub of command.commands) {
      if (sub.name() === 'help') continue;
      out.push([...path, sub.name()]);
      walk(sub, [...path, sub.name()]);
    }
  };
  walk(program, []);
  return out;
}

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.trim().split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

/** `deploy-sts <path> --help` through the real program, its output collected (every verb, without a process each). */
async function helpOf(path: string[], flag = '--help'): Promise<{ out: string; err: string; code: string | undefined }> {
  let out = '';
  let err = '';
  const program = buildProgram({ env: {}, run: async () => {} }, { out: (t) => (out += t), err: (t) => (err += t) });
  try {
    await program.parseAsync([...path, flag], { from: 'user' });
    return { out, err, code: undefined };
  } catch (error) {
    return { out, err, code: (error as { code?: string }).code };
  }
}

describe('--help', () => {
  const all = verbs();

  it('covers every verb', () => {
    expect(all.map((v) => v.join(' '))).toEqual(
      expect.arrayContaining(['serve', 'policy', 'policy check', 'policy explain', 'tokens', 'tokens list', 'tokens revoke', 'audit', 'keys', 'keys rotate', 'dev', 'dev token', 'credentials', 'credentials set', 'credentials list', 'credentials remove', 'workflows', 'workflows check']),
    );
  });

  for (const path of verbs()) {
    it(`\`deploy-sts ${path.join(' ')} --help\` and -h print its usage, every flag with its variable and default, and an example`, async () => {
      const long = await helpOf(path);
      const short = await helpOf(path, '-h');
      expect(long.code).toBe('commander.helpDisplayed');
      expect(short.out).toBe(long.out);
      expect(long.err).toBe('');
      expect(long.out).toMatch(new RegExp(`^Usage: deploy-sts ${path.join(' ')} `));
      expect(long.out).toMatch(/\nExamples?:\n {2}\$ .*deploy-sts /);
      if (long.out.includes('--data-dir')) expect(long.out.replace(/\s+/g, ' ')).toContain('(env DEPLOY_STS_DATA_DIR; default: .data)');
      if (path.join(' ') === 'serve') {
        for (const o of OPTION_NAMES) {
          const flag = `--${o.toLowerCase().replaceAll('_', '-')}`;
          const line = long.out.split('\n').findIndex((l) => l.trimStart().startsWith(flag));
          expect(line, flag).toBeGreaterThan(-1);
          // The description may wrap: the flag's entry runs until the next flag.
          const entry = long.out.split('\n').slice(line).join('\n').split(/\n {2}--/)[0]!;
          expect(entry.replace(/\s+/g, ' '), flag).toContain(`env DEPLOY_STS_${o}`);
        }
      }
    });
  }

  it('is what the installed command prints, with exit status 0, for --help and -h', async () => {
    const long = await cli(['serve', '--help']);
    expect(long.code).toBe(0);
    expect(long.stdout).toBe((await helpOf(['serve'])).out);
    const short = await cli(['policy', 'explain', '-h']);
    expect(short.code).toBe(0);
    expect(short.stdout).toBe((await helpOf(['policy', 'explain'])).out);
  });
});

describe('the conventions', () => {
  it('--version prints the package version', async () => {
    const r = await cli(['--version']);
    expect(r.stdout.trim()).toBe((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    expect(r.code).toBe(0);
  });

  it('serve stops, exit 1, when it cannot write its --pid-file (it serves nothing without it)', async () => {
    const dataDir = join(work, 'pid-data');
    // A path below a regular file: no PID file can be written there.
    const r = await cli(['serve', '--dev-defaults', '--port', '0', '--data-dir', dataDir, '--pid-file', join(ROOT, 'package.json', 'deploy-sts.pid')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/deploy-sts\.pid/);
  });

  it('a verb with sub-verbs typed alone lists them (exit 2)', async () => {
    const r = await cli(['policy']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Commands:\n {2}check .*\n[\s\S]* {2}explain /);
  });

  it('deploy-sts alone prints the verbs (exit 2)', async () => {
    const r = await cli([]);
    expect(r.code).toBe(2);
    for (const verb of ['serve', 'policy', 'tokens', 'audit', 'keys', 'credentials', 'workflows', 'dev']) expect(r.stderr).toContain(`  ${verb}`);
  });

  it('an unknown verb or flag is a usage error with the closest one', async () => {
    const verb = await cli(['polcy', 'check']);
    expect(verb.code).toBe(2);
    expect(verb.stderr).toContain('deploy-sts: unknown command: polcy\n(Did you mean policy?)');
    const sub = await cli(['policy', 'chek']);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toContain('deploy-sts: unknown command: policy chek\n(Did you mean check?)');
    const flag = await cli(['serve', '--prot', '80']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("deploy-sts: unknown option '--prot'\n(Did you mean --port?)");
    expect(flag.stderr).toContain('Usage: deploy-sts serve [options]');
    const missing = await cli(['tokens', 'revoke']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing required argument 'jti'");
  });

  it('a failure is exit 1', async () => {
    const r = await cli(['policy', 'check', join(work, 'nowhere')]);
    expect(r.code).toBe(1);
  });

  it('an unknown DEPLOY_STS_* variable is a warning naming the closest real one', async () => {
    const r = await cli(['policy', 'check', EXAMPLE_POLICIES], { DEPLOY_STS_POLICY: 'x', DEPLOY_STS_DATADIR: 'y' });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('deploy-sts: warning: DEPLOY_STS_DATADIR is not a variable deploy-sts reads, so it changes nothing — did you mean DEPLOY_STS_DATA_DIR?');
    expect(r.stderr).toContain('deploy-sts: warning: DEPLOY_STS_POLICY is not a variable deploy-sts reads, so it changes nothing — did you mean DEPLOY_STS_POLICIES?');
  });

  it('an unknown policy key or condition gets the closest allowed one', async () => {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const dir = join(work, 'typo');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'docs.yml'), 'site: docs\nrepository: acme/docs\nrepository_id: "1"\nrule:\n  - name: a\n');
    writeFileSync(join(dir, 'web.yml'), 'site: web\nrepository: acme/web\nrepository_id: "2"\nrules:\n  - name: a\n    context: preview\n    permissions: [deployments:write]\n    when:\n      evnt_name: push\n');
    const r = await cli(['policy', 'check', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown key "rule" (did you mean "rules"?)');
    expect(r.stderr).toContain('unknown condition "evnt_name" (did you mean "event_name"?)');
  });

  it('an unknown site in policy explain gets the closest site the policies name', async () => {
    const r = await cli(['policy', 'explain', '--site', 'doc', '--claims', '-', '--policies', EXAMPLE_POLICIES], {}, { input: '{"repository":"acme/docs"}' });
    expect(r.stdout).toContain(`note: no policy in ${EXAMPLE_POLICIES} names site "doc" (did you mean "docs"?)`);
    expect(r.code).toBe(1);
  });
});

describe('dev token', () => {
  const env = { DEPLOY_STS_DATA_DIR: join(work, 'dev') };

  it('refuses a --claim name GitHub never sends (a typo would still get production), unless --claim-any', async () => {
    const typo = await cli(['dev', 'token', '--claim', 'evnt_name=pull_request_target'], env);
    expect(typo.code).toBe(2);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toContain('deploy-sts: --claim evnt_name: not a claim GitHub sends (did you mean "event_name"?); add --claim-any to set it anyway');
    const any = await cli(['dev', 'token', '--claim', 'evnt_name=x', '--claim-any'], env);
    expect(any.code).toBe(0);
    expect(claimsOf(any.stdout)).toMatchObject({ evnt_name: 'x', event_name: 'push' });
  });

  it('--repository sets the repository, its owner and both ids consistently (those of the examples for acme)', async () => {
    const web = await cli(['dev', 'token', '--repository', 'acme/web'], env);
    const claims = claimsOf(web.stdout);
    expect(claims).toMatchObject({
      repository: 'acme/web',
      repository_owner: 'acme',
      repository_owner_id: '51204',
      job_workflow_ref: 'acme/web/.github/workflows/deploy.yml@refs/heads/main',
      sub: 'repo:acme/web:environment:production',
    });
    expect(claims.repository_id).toMatch(/^\d{9}$/);
    expect(web.stderr).toContain(`dev token for acme/web: repository_id ${claims.repository_id as string}, repository_owner_id 51204`);
    const again = claimsOf((await cli(['dev', 'token', '--repository', 'acme/web'], env)).stdout);
    expect(again.repository_id).toBe(claims.repository_id);
    expect(claimsOf((await cli(['dev', 'token', '--repository', 'acme/docs'], env)).stdout)).toMatchObject({ repository_id: '892043217' });
    expect((await cli(['dev', 'token', '--repository', 'acme'], env)).code).toBe(2);
  });

  it('--event and --ref set the event, the ref, its type and the workflow refs', async () => {
    const r = await cli(['dev', 'token', '--event', 'pull_request_target', '--ref', 'refs/tags/v1.2.3'], env);
    expect(claimsOf(r.stdout)).toMatchObject({
      event_name: 'pull_request_target',
      ref: 'refs/tags/v1.2.3',
      ref_type: 'tag',
      workflow_ref: 'acme/docs/.github/workflows/deploy.yml@refs/tags/v1.2.3',
    });
    const bad = await cli(['dev', 'token', '--event', 'pull_request_targt'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('(did you mean "pull_request_target"?)');
    expect((await cli(['dev', 'token', '--ref', 'main'], env)).stderr).toContain('--ref takes a full ref name');
  });
});

describe('tokens list and audit', () => {
  let issuer: TestIssuer;
  let svc: TestService;
  beforeAll(async () => {
    issuer = await startIssuer();
    svc = await startService({ issuer: issuer.url });
    await exchangeToken(svc.url, await issuer.token());
  });
  afterAll(async () => {
    await svc.stop();
    await issuer.close();
  });

  it('print a header row', async () => {
    const env = { DEPLOY_STS_DATA_DIR: svc.dataDir };
    const tokens = await cli(['tokens', 'list'], env);
    expect(tokens.stdout.split('\n')[0]).toMatch(/^JTI +SITE +CONTEXT +SCOPE +REPOSITORY +EXPIRES +STATE$/);
    expect(tokens.stdout.split('\n')[1]).toMatch(/ docs +production +deployments:write +acme\/docs +\d{4}-.*Z +active$/);
    const audit = await cli(['audit'], env);
    expect(audit.stdout.split('\n')[0]).toMatch(/^ID +TIME +RESULT +SITE +RULE +REPOSITORY +EVENT +REASON$/);
  });

  it('--json uses the snake_case names of the HTTP API', async () => {
    const env = { DEPLOY_STS_DATA_DIR: svc.dataDir };
    const [token] = JSON.parse((await cli(['tokens', 'list', '--json'], env)).stdout) as Record<string, unknown>[];
    expect(Object.keys(token!).sort()).toEqual(['context', 'expires_at', 'issued_at', 'jti', 'repository', 'revoked', 'rule', 'scope', 'site']);
    const [row] = JSON.parse((await cli(['audit', '--json'], env)).stdout) as Record<string, unknown>[];
    expect(row).toHaveProperty('repository_id', '892043217');
    expect(row).toHaveProperty('event_name', 'push');
    expect(Object.keys(row!).every((k) => /^[a-z_]+$/.test(k))).toBe(true);
  });
});
