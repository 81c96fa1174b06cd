/** The `deploy-sts` command line, run as a user runs it: the built CLI in a child process. */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type TestIssuer } from './helpers/issuer.js';
import { EXAMPLE_POLICIES, ROOT, examplePolicies, exchangeToken, postForm, startService, tempDir, type TestService } from './helpers/service.js';

const execFileP = promisify(execFile);

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [join(ROOT, 'build/exchange-service/cli.js'), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', DEPLOY_STS_METRICS_LISTEN: '127.0.0.1:0', ...env },
      timeout: 20_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let issuer: TestIssuer;
let svc: TestService;
const work = tempDir('deploy-sts-cli-');

beforeAll(async () => {
  issuer = await startIssuer();
  svc = await startService({ issuer: issuer.url });
});
afterAll(async () => {
  await svc.stop();
  await issuer.close();
  rmSync(work, { recursive: true, force: true });
});

describe('deploy-sts policy check', () => {
  it('accepts the example policies', async () => {
    const r = await cli(['policy', 'check', EXAMPLE_POLICIES]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok: /);
  });

  it('exits 1 with file:line:column for a bad file, and refuses production for pull_request_target', async () => {
    const dir = join(work, 'bad');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'docs.yml'),
      `site: docs
repository: acme/docs
repository_id: "1"
rules:
  - name: prod
    context: production
    permissions: [deployments:write]
    when:
      event_name: pull_request_target
`,
    );
    const r = await cli(['policy', 'check', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/docs\.yml:\d+:\d+: .*pull_request_target/);
  });

  it('exits 2 with usage for an unknown verb', async () => {
    const r = await cli(['policy', 'frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage:');
  });
});

describe('deploy-sts policy explain', () => {
  const jwks = join(work, 'jwks.json');
  /** The example policies bound to the test issuer, explained as a service trusting it would. */
  let examples: string;
  let env: Record<string, string>;
  beforeAll(() => {
    writeFileSync(jwks, JSON.stringify(issuer.publicJwks()));
    examples = examplePolicies(issuer.url, join(work, 'examples'));
    env = { DEPLOY_STS_ISSUER: issuer.url };
  });

  it('explains a grant, offline from a JWKS file', async () => {
    const file = join(work, 'grant.jwt');
    writeFileSync(file, await issuer.token());
    const r = await cli(['policy', 'explain', '--site', 'docs', '--token', file, '--jwks', jwks, '--policies', examples, '--audience', svc.audience], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('verified: signature');
    expect(r.stdout).toContain(`policy docs.yml: binds issuer ${JSON.stringify(issuer.url)}`);
    expect(r.stdout).toContain('rule "production" (production, docs.yml): MATCHES');
    expect(r.stdout).toMatch(/result: GRANTED by rule "production": production/);
  });

  it('explains a denial condition by condition', async () => {
    const file = join(work, 'deny.jwt');
    writeFileSync(file, await issuer.token({ environment: 'staging' }));
    const r = await cli(['policy', 'explain', '--site', 'docs', '--token', file, '--jwks', jwks, '--policies', examples, '--audience', svc.audience], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✗ environment "staging" is not/);
    expect(r.stdout).toMatch(/result: DENIED \(no_rule_matched\)/);
  });

  it('checks times at --at, and says plainly when the token does not verify', async () => {
    const file = join(work, 'old.jwt');
    const iat = Math.floor(Date.parse('2026-01-01T00:00:00Z') / 1000);
    writeFileSync(file, await issuer.token({ iat, nbf: iat - 5, exp: iat + 300 }));
    const args = ['policy', 'explain', '--site', 'docs', '--token', file, '--jwks', jwks, '--policies', examples, '--audience', svc.audience];
    const now = await cli(args, env);
    expect(now.stdout).toMatch(/NOT verified: .*expired/);
    const then = await cli([...args, '--at', '2026-01-01T00:01:00Z'], env);
    expect(then.code).toBe(0);
    expect(then.stdout).toContain('verified: signature');
  });

  it('says which file it cannot read', async () => {
    const r = await cli(['policy', 'explain', '--site', 'docs', '--token', join(work, 'missing.jwt'), '--policies', EXAMPLE_POLICIES]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--token .*missing\.jwt: cannot read the file \(ENOENT\)/);
  });

  it('prints JSON with --json', async () => {
    const file = join(work, 'json.jwt');
    writeFileSync(file, await issuer.token({ event_name: 'workflow_run', job_workflow_ref: 'acme/docs/.github/workflows/preview-deploy.yml@refs/heads/main' }));
    const r = await cli(['policy', 'explain', '--site', 'docs', '--token', file, '--jwks', jwks, '--policies', examples, '--audience', svc.audience, '--json'], env);
    const parsed = JSON.parse(r.stdout) as { verified: boolean; decision: { granted: boolean; context: string } };
    expect(parsed.verified).toBe(true);
    expect(parsed.decision).toMatchObject({ granted: true, context: 'preview' });
  });
});

describe('deploy-sts tokens, audit and keys', () => {
  it('lists issued tokens, revokes one by jti, and shows the audit log', async () => {
    const granted = await exchangeToken(svc.url, await issuer.token());
    const token = String(granted.body.access_token);
    const jti = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti as string;
    await exchangeToken(svc.url, await issuer.token({ ref: 'refs/heads/nope' }));
    const env = { DEPLOY_STS_DATA_DIR: svc.dataDir };

    const list = await cli(['tokens', 'list', '--json'], env);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { jti: string }[]).map((t) => t.jti)).toContain(jti);
    expect(list.stdout).not.toContain(token);

    const revoke = await cli(['tokens', 'revoke', jti], env);
    expect(revoke.code).toBe(0);
    const introspected = await postForm(`${svc.url}/introspect`, { token }, { authorization: `Bearer ${token}` });
    expect(introspected.body).toEqual({ active: false });
    expect((await cli(['tokens', 'revoke', 'no-such-jti'], env)).code).toBe(1);

    const audit = await cli(['audit', '--site', 'docs', '--since', '1h'], env);
    expect(audit.code).toBe(0);
    expect(audit.stdout).toMatch(/granted .*docs/);
    expect(audit.stdout).toMatch(/denied .*ref "refs\/heads\/nope"/);
  });

  it('rotates keys: the next key is published first and signs only after the JWKS cache lifetime', async () => {
    const before = String((await exchangeToken(svc.url, await issuer.token())).body.access_token);
    const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid as string;
    const oldKid = kidOf(before);
    const r = await cli(['keys', 'rotate'], { DEPLOY_STS_DATA_DIR: svc.dataDir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/is published now and signs from .* \(in 300 s, the JWKS cache lifetime\)/);
    await svc.service.keys.reload();
    const jwks = (await (await fetch(`${svc.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys).toHaveLength(2);
    const newKid = jwks.keys.map((k) => k.kid).find((k) => k !== oldKid)!;
    expect(svc.service.keys.next()?.kid).toBe(newKid);
    // Still signed with the old key: verifiers holding the JWKS fetched before the rotation accept it.
    expect(kidOf(String((await exchangeToken(svc.url, await issuer.token())).body.access_token))).toBe(oldKid);
  });

  it('rotates at once with --now (a compromised key): new tokens use the new key, the old key is withdrawn', async () => {
    const before = String((await exchangeToken(svc.url, await issuer.token())).body.access_token);
    const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid as string;
    const r = await cli(['keys', 'rotate', '--now'], { DEPLOY_STS_DATA_DIR: svc.dataDir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/signs now; .* withdrawn from the JWKS/);
    await svc.service.keys.reload();
    const after = String((await exchangeToken(svc.url, await issuer.token())).body.access_token);
    expect(kidOf(after)).not.toBe(kidOf(before));
    const jwks = (await (await fetch(`${svc.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual([kidOf(after)]);
    expect((await postForm(`${svc.url}/introspect`, { token: before }, { authorization: `Bearer ${before}` })).body).toEqual({ active: false });
    expect((await postForm(`${svc.url}/introspect`, { token: after }, { authorization: `Bearer ${after}` })).body.active).toBe(true);
  });

  it('prints a dev token with chosen claims', async () => {
    const r = await cli(['dev', 'token', '--claim', 'event_name=workflow_run', '--claim', 'environment=', '--audience', 'x'], { DEPLOY_STS_DATA_DIR: join(work, 'dev') });
    const claims = JSON.parse(Buffer.from(r.stdout.trim().split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ event_name: 'workflow_run', aud: 'x', iss: 'https://dev-issuer.deploy-sts.invalid' });
    expect(claims).not.toHaveProperty('environment');
  });
});

describe('deploy-sts serve configuration', () => {
  it('refuses a bad value, naming the variable', async () => {
    const r = await cli(['serve'], { DEPLOY_STS_POLICIES: EXAMPLE_POLICIES, DEPLOY_STS_PORT: 'eighty', DEPLOY_STS_DATA_DIR: join(work, 'cfg') });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DEPLOY_STS_PORT');
  });

  it('refuses the dev issuer on a non-loopback address', async () => {
    const r = await cli(['serve', '--dev-issuer', '--host', '0.0.0.0'], { DEPLOY_STS_POLICIES: EXAMPLE_POLICIES, DEPLOY_STS_DATA_DIR: join(work, 'cfg') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DEV_ISSUER.*loopback/);
  });

  it('refuses a public bind without a public URL, and a public URL without https', async () => {
    const env = { DEPLOY_STS_POLICIES: EXAMPLE_POLICIES, DEPLOY_STS_DATA_DIR: join(work, 'cfg') };
    const noUrl = await cli(['serve', '--host', '0.0.0.0'], env);
    expect(noUrl.code).toBe(1);
    expect(noUrl.stderr).toMatch(/DEPLOY_STS_PUBLIC_URL is required/);
    const plain = await cli(['serve', '--host', '0.0.0.0', '--public-url', 'http://sts.example.com'], env);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/PUBLIC_URL must use https/);
  });

  it('refuses the dev issuer behind a proxy', async () => {
    const r = await cli(['serve', '--dev-issuer', '--trust-proxy', '1'], { DEPLOY_STS_POLICIES: EXAMPLE_POLICIES, DEPLOY_STS_DATA_DIR: join(work, 'cfg') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DEV_ISSUER=1 is refused behind a proxy/);
  });

  it('refuses an introspection secret shorter than 32 characters', async () => {
    const file = join(work, 'short-secret');
    writeFileSync(file, 'too-short');
    const r = await cli(['serve', '--port', '0', '--introspect-secret-file', file], { DEPLOY_STS_POLICIES: EXAMPLE_POLICIES, DEPLOY_STS_DATA_DIR: join(work, 'cfg') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/shorter than 32 characters/);
  });

  it('says plainly when the port is taken', async () => {
    const port = new URL(svc.url).port;
    const r = await cli(['serve', '--port', port], { DEPLOY_STS_POLICIES: EXAMPLE_POLICIES, DEPLOY_STS_DATA_DIR: join(work, 'cfg') });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the port is already in use`);
  });

  it('refuses an http:// issuer that is not loopback', async () => {
    const r = await cli(['serve', '--issuer', 'http://token.example.com'], { DEPLOY_STS_POLICIES: EXAMPLE_POLICIES, DEPLOY_STS_DATA_DIR: join(work, 'cfg') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DEPLOY_STS_ISSUER.*https/);
  });

  it('stops start-up on a broken policy file with its position', async () => {
    const dir = join(work, 'broken');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'x.yml'), 'site: docs\nrepository: acme/docs\nrepository_id: "1"\nrules:\n  - name: a\n    context: preview\n    permissions: [deployments:write]\n    when:\n      evnt_name: push\n');
    const r = await cli(['serve'], { DEPLOY_STS_POLICIES: dir, DEPLOY_STS_DATA_DIR: join(work, 'cfg'), DEPLOY_STS_PORT: '0' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/x\.yml:9:7: .*evnt_name/);
  });
});

describe('one configuration for every verb', () => {
  it('tokens, audit and keys refuse a bad storage option as serve does, naming the variable', async () => {
    for (const verb of [['audit'], ['tokens', 'list'], ['keys', 'rotate']]) {
      const r = await cli(verb, { DEPLOY_STS_DATA_DIR: join(work, 'one-config'), DEPLOY_STS_SYNCHRONOUS: 'SOMETIMES' });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/DEPLOY_STS_SYNCHRONOUS \(--synchronous\): .*\(got "SOMETIMES"\)/);
    }
  });

  it('keys accept a key-encryption key with SQLite, as serve does (there it seals the stored platform credentials)', async () => {
    const r = await cli(['keys', 'rotate'], { DEPLOY_STS_DATA_DIR: join(work, 'one-config'), DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: join(work, 'kek') });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/new signing key \S+ is published now/);
  });

  it('dev token signs for the public URL serve would be reached at', async () => {
    const r = await cli(['dev', 'token'], { DEPLOY_STS_DATA_DIR: join(work, 'one-config'), DEPLOY_STS_PUBLIC_URL: 'http://127.0.0.1:9999/' });
    expect(r.code).toBe(0);
    const claims = JSON.parse(Buffer.from(r.stdout.trim().split('.')[1]!, 'base64url').toString()) as { aud: string };
    expect(claims.aud).toBe('http://127.0.0.1:9999');
  });
});
