/**
 * One deploy-gateway world for a suite: the test OIDC issuer, the Netlify stand-in with two sites, a real service
 * whose policies bind `docs` and `blog` to them through `upstream.netlify`, the stand-in's token stored as the
 * credential (sealed under a key-encryption key), and helpers for real deploy tokens of each kind.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { credentialStore } from '../../exchange-service/credentials/store.js';
import { readKeyEncryptionKey } from '../../exchange-service/keys/key-encryption.js';
import { mintAccessToken } from '../../exchange-service/access-token/mint.js';
import { docsSite, toYaml } from '../policy/fixtures.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { startNetlifyStandin, type NetlifyStandin, type StandinSite } from '../helpers/netlify/standin.js';
import { exchangeToken, startService, tempDir, type TestService } from '../helpers/service.js';
import { NO_RATE_LIMITS } from '../security/support.js';
import { startPostgres } from '../../testing/postgres.js';

export const CREDENTIAL = 'netlify-acme';

export interface GatewayWorld {
  issuer: TestIssuer;
  standin: NetlifyStandin;
  svc: TestService;
  /** Netlify sites: `docs` and `blog` are bound by policy, `other` is another site of the account. */
  docs: StandinSite;
  blog: StandinSite;
  other: StandinSite;
  /** `<service>/gateway/netlify/api/v1` */
  apiUrl: string;
  /** A real deploy token from a real exchange. */
  token(kind: 'production' | 'preview', site?: string): Promise<string>;
  /** A token of ours for the gateway, minted `ageSeconds` ago with `ttlSeconds` to live. */
  mintedAgo(ageSeconds: number, ttlSeconds: number): Promise<string>;
  stop(): Promise<void>;
}

export interface WorldOptions {
  /** More DEPLOY_STS_* variables. */
  env?: Record<string, string>;
  /** Store the credential (default true). */
  storeCredential?: boolean;
  functionsInPreviews?: boolean;
}

export async function startGatewayWorld(options: WorldOptions = {}): Promise<GatewayWorld> {
  const issuer = await startIssuer();
  const standin = await startNetlifyStandin();
  const docs = standin.addSite({ name: 'acme-docs' });
  const blog = standin.addSite({ name: 'acme-blog' });
  const other = standin.addSite({ name: 'acme-shop' });
  const dir = tempDir('deploy-sts-gateway-');
  const policies = join(dir, 'policies');
  mkdirSync(policies);
  const upstream = (siteId: string) => ({
    netlify: { site_id: siteId, credential: CREDENTIAL, ...(options.functionsInPreviews ? { functions_in_previews: true } : {}) },
  });
  writeFileSync(join(policies, 'docs.yml'), toYaml(docsSite({ upstream: upstream(docs.id) })));
  writeFileSync(join(policies, 'blog.yml'), toYaml(docsSite({ site: 'blog', upstream: upstream(blog.id) })));
  // A site that does not deploy through the gateway: its tokens carry the ordinary audience.
  writeFileSync(join(policies, 'plain.yml'), toYaml(docsSite({ site: 'plain' })));
  const kek = join(dir, 'kek');
  writeFileSync(kek, randomBytes(32).toString('base64'), { mode: 0o600 });
  const svc = await startService({
    issuer: issuer.url,
    policies,
    env: { ...NO_RATE_LIMITS, DEPLOY_STS_NETLIFY_API_URL: standin.apiUrl, DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kek, ...options.env },
  });
  if (options.storeCredential ?? true) {
    await credentialStore(svc.service.storage.gateway, await readKeyEncryptionKey(kek)).set(CREDENTIAL, standin.token);
  }

  return {
    issuer,
    standin,
    svc,
    docs,
    blog,
    other,
    apiUrl: `${svc.url}/gateway/netlify/api/v1`,
    async token(kind, site = 'docs') {
      const claims = kind === 'production' ? {} : { event_name: 'pull_request_target', environment: undefined };
      const res = await exchangeToken(svc.url, await issuer.token(claims), site);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.context).toBe(kind);
      return String(res.body.access_token);
    },
    async mintedAgo(ageSeconds, ttlSeconds) {
      const minted = await mintAccessToken(svc.service.keys.active(), {
        issuer: svc.url,
        audience: `${svc.url}/gateway/netlify`,
        site: 'docs',
        org: 'acme',
        scope: 'deployments:write',
        context: 'production',
        ttlSeconds,
        actor: { repository: 'acme/docs', repository_id: '892043217', run_id: '1', run_attempt: '1', workflow_ref: undefined, sha: 'abc', event_name: 'push', ref: 'refs/heads/main' },
        now: Math.floor(Date.now() / 1000) - ageSeconds,
      });
      return minted.token;
    },
    async stop() {
      await svc.stop();
      await standin.close();
      await issuer.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Stand-in requests (below /api/v1) whose path matches. */
export function reached(world: GatewayWorld, pattern: RegExp): string[] {
  return world.standin.requests.map((r) => `${r.method} ${r.path}`).filter((line) => pattern.test(line));
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: () => Record<string, unknown>;
}

/** A raw HTTP request (fetch would normalise `..` and drop some headers), path as given; `seen` gets every answer. */
export function rawRequest(url: string, method: string, path: string, headers: Record<string, string | number>, body?: Buffer | Buffer[], seen?: string[]): Promise<Answer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        seen?.push(`${res.statusCode} ${JSON.stringify(res.headers)} ${text}`);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (Array.isArray(body)) {
      for (const chunk of body) req.write(chunk);
      req.end();
    } else req.end(body);
  });
}

/**
 * Two replicas of the service sharing one PostgreSQL database and one public URL (as behind a load balancer), with
 * `docs` bound to a stand-in site and the stand-in's token stored, sealed, through replica 0 only.
 */
/**
 * A draft deploy of the world's docs site through the gateway, with these files (path → SHA-1), as `netlify deploy`
 * makes one: create, then list the files. Resolves the deploy id; fails the test on any other answer than 200.
 */
export async function createDraft(world: GatewayWorld, token: string, files: Record<string, string>): Promise<string> {
  const api = '/gateway/netlify/api/v1';
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const created = await rawRequest(world.svc.url, 'POST', `${api}/sites/${world.docs.id}/deploys`, headers, Buffer.from(JSON.stringify({ draft: true })));
  expect(created.status, created.text).toBe(200);
  const id = created.json().id as string;
  const updated = await rawRequest(world.svc.url, 'PUT', `${api}/sites/${world.docs.id}/deploys/${id}`, headers, Buffer.from(JSON.stringify({ files })));
  expect(updated.status, updated.text).toBe(200);
  return id;
}

export interface GatewayReplicas {
  issuer: TestIssuer;
  standin: NetlifyStandin;
  site: StandinSite;
  /** The key-encryption key file every replica uses. */
  kek: string;
  replicas: TestService[];
  /** Where replica `i` really listens (they share the public URL). */
  address(i: number): string;
  stop(): Promise<void>;
}

export async function startGatewayReplicas(env: Record<string, string> = {}): Promise<GatewayReplicas> {
  const issuer = await startIssuer();
  const pg = await startPostgres();
  const standin = await startNetlifyStandin();
  const site = standin.addSite({ name: 'acme-docs' });
  const dir = tempDir('deploy-sts-gateway-pg-');
  mkdirSync(join(dir, 'policies'));
  writeFileSync(join(dir, 'policies', 'docs.yml'), toYaml(docsSite({ upstream: { netlify: { site_id: site.id, credential: CREDENTIAL } } })));
  const kek = join(dir, 'kek');
  writeFileSync(kek, randomBytes(32).toString('base64'), { mode: 0o600 });
  const databaseUrl = await pg.createDatabase();
  const replicas: TestService[] = [];
  for (let i = 0; i < 2; i++) {
    replicas.push(
      await startService({
        issuer: issuer.url,
        policies: join(dir, 'policies'),
        env: {
          ...NO_RATE_LIMITS,
          DEPLOY_STS_PUBLIC_URL: 'http://127.0.0.1:8443',
          DEPLOY_STS_DATABASE_URL: databaseUrl,
          DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kek,
          DEPLOY_STS_NETLIFY_API_URL: standin.apiUrl,
          ...env,
        },
      }),
    );
  }
  await credentialStore(replicas[0]!.service.storage.gateway, await readKeyEncryptionKey(kek)).set(CREDENTIAL, standin.token);
  return {
    issuer,
    standin,
    site,
    kek,
    replicas,
    address: (i) => `http://127.0.0.1:${replicas[i]!.service.port}`,
    async stop() {
      for (const r of replicas) await r.stop();
      await standin.close();
      await pg.stop();
      await issuer.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
