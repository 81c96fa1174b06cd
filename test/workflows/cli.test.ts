/** `deploy-sts workflows check`, run as a user runs it: the built CLI in a child process. */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/service.js';
import { CORPUS, POLICY_CORPUS, readWorkflowFiles } from './helpers.js';

const execFileP = promisify(execFile);
const work = tempDir('deploy-sts-workflows-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function cli(args: string[], cwd = ROOT, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [join(ROOT, 'build/exchange-service/cli.js'), 'workflows', ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A repository with .github/workflows holding the named corpus files (and optionally an action.yml at its root). */
function repo(name: string, files: string[], actionName?: string): string {
  const root = join(work, name);
  mkdirSync(join(root, '.github', 'workflows'), { recursive: true });
  for (const f of files) copyFileSync(join(CORPUS, f), join(root, '.github', 'workflows', f));
  if (actionName) writeFileSync(join(root, 'action.yml'), `name: ${actionName}\ndescription: x\nruns:\n  using: node24\n  main: main.js\n`);
  return root;
}

describe('deploy-sts workflows check', () => {
  it('checks .github/workflows by default and exits 0 when nothing is wrong', async () => {
    const r = await cli(['check'], repo('good', ['good-deploy.yml', 'gated.yml']));
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok: 2 workflow files checked, no findings\n');
    expect(r.code).toBe(0);
  });

  it('exits 0 when there are only warnings, printing file:line:column, severity, rule and fix', async () => {
    const r = await cli(['check'], repo('warnings', ['no-permissions.yml']));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\.github\/workflows\/no-permissions\.yml:3:1: warning DSTS203 workflow-permissions: the workflow declares no top-level permissions:\. .+ Fix: /m);
    expect(r.stdout).toMatch(/^\.github\/workflows\/no-permissions\.yml:10:15: warning DSTS202 checkout-persists-credentials: /m);
    expect(r.stdout).toMatch(/^0 errors, 2 warnings in 1 workflow file$/m);
  });

  it('exits 1 on an error finding', async () => {
    const r = await cli(['check'], repo('errors', ['pwn-request.yml']));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^\.github\/workflows\/pwn-request\.yml:18:11: error DSTS103 build-in-privileged-job: job "preview" holds id-token: write/m);
  });

  it('prints {"findings":[{file,line,column,rule,severity,message}],"files":N} with --json', async () => {
    const r = await cli(['check', 'test/workflows/corpus', '--json']);
    expect(r.code).toBe(1);
    const json = JSON.parse(r.stdout) as { findings: Record<string, unknown>[]; files: number };
    expect(Object.keys(json)).toEqual(['findings', 'files']);
    expect(json.files).toBe(readWorkflowFiles(CORPUS).length);
    for (const f of json.findings) expect(Object.keys(f)).toEqual(['file', 'line', 'column', 'rule', 'severity', 'message']);
    expect(json.findings[0]).toMatchObject({ file: 'test/workflows/corpus/anchors.yml', line: 18, column: 11, rule: 'DSTS103', severity: 'error' });
    // Indented by two spaces, exactly as JSON.stringify indents (the report is written field by field).
    expect(r.stdout).toBe(`${JSON.stringify(json, null, 2)}\n`);
  });

  it('recognises the deploy-sts Action used as uses: ./ by the name in the repository\'s action.yml', async () => {
    const mine = await cli(['check', '--json'], repo('local-mine', ['local-action.yml'], 'deploy-sts'));
    expect((JSON.parse(mine.stdout) as { findings: { rule: string }[] }).findings.map((f) => f.rule)).toEqual(['DSTS103']);
    const other = await cli(['check', '--json'], repo('local-other', ['local-action.yml'], 'another-action'));
    expect(other.stdout).toBe(`${JSON.stringify({ findings: [], files: 1 }, null, 2)}\n`);
  });

  it('writes SARIF 2.1.0 with --sarif, next to the usual report', async () => {
    const file = join(work, 'out.sarif');
    const r = await cli(['check', 'test/workflows/corpus', '--sarif', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/errors, \d+ warnings in \d+ workflow files\n$/);
    const log = JSON.parse(readFileSync(file, 'utf8')) as { version: string; runs: { results: { ruleId: string; locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }[] }[] };
    expect(log.version).toBe('2.1.0');
    expect(log.runs[0]!.results[0]!.locations[0]!.physicalLocation.artifactLocation.uri).toBe('test/workflows/corpus/anchors.yml');
  });

  it('cross-checks the policies with --policies and --repository', async () => {
    const r = await cli(['check', join(POLICY_CORPUS, 'workflows'), '--policies', join(POLICY_CORPUS, 'policies'), '--repository', 'acme/www']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/www\.yml:24:11: error DSTS301 policy-workflow-missing: /);
  });

  it('exits 1 with the policy loader\'s errors when the policies do not load', async () => {
    const r = await cli(['check', join(POLICY_CORPUS, 'workflows'), '--policies', join(work, 'none'), '--repository', 'acme/www']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the policies directory does not exist/);
  });

  describe('usage errors exit 2 and say what to do', () => {
    const cases: [string, string[], RegExp][] = [
      ['an unknown option', ['check', '--strict'], /unknown option '--strict'/i],
      ['two directories', ['check', 'a', 'b'], /takes one directory/],
      ['a directory that does not exist', ['check', 'no/such/dir'], /no\/such\/dir does not exist: run from the repository root/],
      ['--policies without --repository', ['check', 'test/workflows/corpus', '--policies', 'examples/policies'], /--policies and --repository go together/],
      ['a malformed --repository', ['check', 'test/workflows/corpus', '--policies', 'examples/policies', '--repository', 'acme'], /--repository must be owner\/name/],
      ['another verb', ['lint'], /unknown command: workflows lint/],
    ];
    for (const [what, args, message] of cases) {
      it(what, async () => {
        const r = await cli(args);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(message);
        expect(r.stdout).toBe('');
      });
    }

    it('an empty directory', async () => {
      mkdirSync(join(work, 'empty'), { recursive: true });
      const r = await cli(['check', join(work, 'empty')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/has no workflow files \(\*\.yml or \*\.yaml\)/);
    });
  });

  it('processes every one of 200 workflow files', async () => {
    const dir = join(work, 'many');
    mkdirSync(dir, { recursive: true });
    const sources = readWorkflowFiles(CORPUS).filter((f) => !/^(caller|called-)/.test(f.name));
    for (let i = 0; i < 200; i++) {
      const source = sources[i % sources.length]!;
      writeFileSync(join(dir, `w${String(i).padStart(3, '0')}-${source.name}`), source.text);
    }
    const r = await cli(['check', dir, '--json']);
    const json = JSON.parse(r.stdout) as { findings: { file: string }[]; files: number };
    expect(json.files).toBe(200);
    // Every copy of a bad workflow reports its findings: each file with findings in the corpus has them in every copy.
    const withFindings = new Set(json.findings.map((f) => f.file));
    const bad = sources.filter((s) => !['gated.yml', 'good-deploy.yml', 'unrelated-ci.yml'].includes(s.name)).length;
    expect(withFindings.size).toBe(Math.floor(200 / sources.length) * bad + sources.slice(0, 200 % sources.length).filter((s) => !['gated.yml', 'good-deploy.yml', 'unrelated-ci.yml'].includes(s.name)).length);
  });
});

describe('workflows check --policies loads policies as policy check does', () => {
  it('trusts the configured issuers (DEPLOY_STS_ISSUER): a policy bound to a GitHub Enterprise Server is cross-checked', async () => {
    const ghes = 'https://ghes.example.test/_services/token';
    const policies = join(work, 'ghes-policies');
    mkdirSync(policies, { recursive: true });
    writeFileSync(join(policies, 'www.yml'), `issuer: ${ghes}\n${readFileSync(join(POLICY_CORPUS, 'policies', 'www.yml'), 'utf8')}`);
    const args = ['check', join(POLICY_CORPUS, 'workflows'), '--policies', policies, '--repository', 'acme/www', '--json'];
    const untrusted = await cli(args);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/is not trusted by this service/);
    const trusted = await cli(args, ROOT, { DEPLOY_STS_ISSUER: ghes });
    expect(trusted.code, trusted.stderr).toBe(1);
    const rules = (JSON.parse(trusted.stdout) as { findings: { rule: string }[] }).findings.map((f) => f.rule);
    expect(rules).toContain('DSTS301');
  });
});
