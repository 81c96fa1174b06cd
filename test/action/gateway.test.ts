/**
 * `gateway: netlify` as a workflow uses it: the committed dist/ bundle exports NETLIFY_AUTH_TOKEN (the masked deploy
 * token) and NETLIFY_API_URL (the gateway) and sets `api-url`; the next step — the real `netlify` CLI with exactly
 * those variables — publishes through the gateway.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActionError } from '../../action/errors.js';
import { parseGateway } from '../../action/inputs.js';
import { makeSiteDir, runNetlify } from '../helpers/netlify/cli.js';
import { startGatewayWorld, type GatewayWorld } from '../gateway/support.js';
import { oidcEnv, startJob, startRunnerTokenEndpoint } from './support/runner.js';

let world: GatewayWorld;
beforeAll(async () => {
  world = await startGatewayWorld();
});
afterAll(async () => {
  await world?.stop();
});

describe('the gateway input', () => {
  it('exports the Netlify CLI\'s variables for later steps, and a production deploy publishes with them', { timeout: 180_000 }, async () => {
    const endpoint = await startRunnerTokenEndpoint(world.issuer);
    const job = await startJob();
    const site = makeSiteDir({ files: { 'index.html': '<h1>from the Action</h1>' } });
    try {
      const main = await job.run('main', {
        inputs: { url: world.svc.url, site: 'docs', gateway: 'netlify', audience: world.svc.audience },
        env: oidcEnv(endpoint),
      });
      expect(main.stdout).not.toContain('::error::');
      expect(main.exitCode).toBe(0);
      const token = main.outputs.token!;
      const apiUrl = `${world.svc.url}/gateway/netlify/api/v1`;
      expect(main.exportedEnv).toEqual({ NETLIFY_AUTH_TOKEN: token, NETLIFY_API_URL: apiUrl });
      expect(main.outputs['api-url']).toBe(apiUrl);
      // Masked before anything else could print it, and never printed after.
      const writes = main.trace.filter((e) => (e.channel === 'stdout' || e.channel === 'stderr') && e.text.includes(token)).map((e) => e.text);
      expect(writes).toEqual([`::add-mask::${token}\n`]);

      const run = await runNetlify(['deploy', '--no-build', '--dir', site.publishDir, '--site', 'acme-docs', '--prod'], {
        apiUrl: main.exportedEnv.NETLIFY_API_URL!,
        token: main.exportedEnv.NETLIFY_AUTH_TOKEN!,
        cwd: site.root,
      });
      expect(run.code, run.output).toBe(0);
      expect(world.standin.published(world.docs.id)?.files.has('index.html')).toBe(true);
    } finally {
      site.remove();
      await job.cleanup();
      await endpoint.close();
    }
  });

  it('refuses a platform it does not know, naming the ones it does', () => {
    expect(parseGateway('')).toBeUndefined();
    expect(parseGateway(' netlify ')).toBe('netlify');
    const error = (() => {
      try {
        parseGateway('vercel');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ActionError);
    expect((error as ActionError).problem).toMatch(/"vercel"/);
    expect((error as ActionError).fix).toMatch(/`netlify`/);
  });
});
