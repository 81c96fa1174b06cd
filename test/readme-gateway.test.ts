/**
 * The README's deploy-gateway examples, run: the Netlify policy example loads and mints gateway tokens, the workflows
 * use the Action's `gateway` input and pin every action by full commit SHA, and docs/verifying-tokens.md's `deploy-sts/verify` example runs
 * as written (imported by its package name) against a real service and real tokens.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { checkPolicyTexts } from '../exchange-service/policy/load.js';
import { evaluate } from '../exchange-service/policy/match.js';
import { githubClaims } from './helpers/issuer.js';
import { ROOT, exchangeToken } from './helpers/service.js';
import { startSuite, type Suite } from './security/support.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const verifying = readFileSync(join(ROOT, 'docs', 'verifying-tokens.md'), 'utf8');
const section = readme.slice(readme.indexOf('## Deploy to Netlify without a Netlify token in GitHub'), readme.indexOf('## The GitHub Action'));
const blocks = (lang: string, text: string) => [...text.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1]!);

describe('the README Netlify recipe', () => {
  it('comes first among the deploy recipes', () => {
    expect(readme.indexOf('## Deploy to Netlify without a Netlify token in GitHub')).toBeLessThan(readme.indexOf('### Quick start'));
  });

  it('has a policy that loads and binds docs to its Netlify site', () => {
    const [policy] = blocks('yaml', section).filter((b) => b.includes('upstream:'));
    const result = checkPolicyTexts([{ file: 'docs.yml', text: policy! }]);
    expect(result.ok, JSON.stringify(!result.ok && result.problems)).toBe(true);
    if (!result.ok) return;
    const decision = evaluate(result.set, 'docs', githubClaims('https://token.actions.githubusercontent.com', { event_name: 'workflow_run', job_workflow_ref: 'acme/docs/.github/workflows/preview-deploy.yml@refs/heads/main' }));
    expect(decision).toMatchObject({ granted: true, context: 'preview', upstream: { netlify: { credential: 'netlify-acme' } } });
  });

  it('has both workflows, with gateway: netlify, --prod only on main, and every action pinned by SHA', () => {
    const workflows = blocks('yaml', section).filter((b) => /^jobs:/m.test(b)).map((b) => parse(b) as { on: unknown; jobs: Record<string, { steps: { uses?: string; run?: string; with?: Record<string, string> }[] }> });
    expect(workflows).toHaveLength(2);
    const [production, previews] = workflows;
    expect(JSON.stringify(production!.on)).toContain('push');
    expect(JSON.stringify(previews!.on)).toContain('workflow_run');
    for (const workflow of workflows) {
      const steps = Object.values(workflow.jobs).flatMap((j) => j.steps);
      for (const step of steps.filter((s) => s.uses)) {
        // deploy-sts/deploy-sts too: the README pins a 40-hex placeholder that `deploy-sts workflows check` accepts as a SHA.
        expect(step.uses).toMatch(/@[0-9a-f]{40}$/);
      }
      expect(steps.find((s) => s.uses?.startsWith('deploy-sts/'))!.with).toMatchObject({ gateway: 'netlify' });
      for (const step of steps.filter((s) => s.run)) expect(step.run).not.toContain('${{');
    }
    const runs = (w: (typeof workflows)[number]) => Object.values(w.jobs).flatMap((j) => j.steps).map((s) => s.run ?? '').join('\n');
    expect(runs(production!)).toMatch(/netlify-cli@27\.10\.2 deploy .*--prod/);
    expect(runs(previews!)).not.toMatch(/--prod/);
  });
});

describe('the deploy-sts/verify example in docs/verifying-tokens.md', () => {
  let suite: Suite;
  let child: ReturnType<typeof spawn> | undefined;
  let port: number;

  beforeAll(async () => {
    suite = await startSuite();
    const [code] = blocks('js', verifying.slice(verifying.indexOf('<!-- verify-example -->')));
    // Imported by the package name, as a user would: the package's "exports" map resolves it to the build.
    child = spawn(process.execPath, ['--input-type=module', '-e', code!], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', DEPLOY_STS_URL: suite.svc.url, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    port = await new Promise<number>((resolve, reject) => {
      let out = '';
      let err = '';
      child!.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child!.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child!.once('exit', (c) => reject(new Error(`the example exited ${c}: ${err}`)));
    });
  });
  afterAll(async () => {
    child?.kill('SIGTERM');
    await suite?.stop();
  });

  async function deployToken(claims: Record<string, unknown> = {}): Promise<string> {
    const res = await exchangeToken(suite.svc.url, await suite.issuer.token(claims));
    expect(res.status).toBe(200);
    return String(res.body.access_token);
  }
  const call = (path: string, token?: string) =>
    fetch(`http://127.0.0.1:${port}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  it('accepts a production token for production', async () => {
    const res = await call('/deploy/production', await deployToken());
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('deploying docs (production) for acme/docs\n');
  });

  it('refuses a preview token for production with 403 wrong_context, and accepts it for a preview', async () => {
    const token = await deployToken({ event_name: 'pull_request_target', environment: undefined, job_workflow_ref: 'acme/docs/.github/workflows/preview.yml@refs/heads/main' });
    const refused = await call('/deploy/production', token);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: 'wrong_context' });
    expect((await call('/deploy/preview', token)).status).toBe(200);
  });

  it('refuses a request without a token with 401', async () => {
    const res = await call('/deploy/preview');
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'malformed' });
  });
});
