/** `deploy-sts dev token`: a GitHub-shaped OIDC token from the local dev issuer, for demos and the walk-through. */
import type { Command } from 'commander';
import { GITHUB_EVENTS } from '../policy/never-match.js';
import { didYouMean } from '../suggest.js';
import { UsageError, type CliContext } from './context.js';
import { dataDirOption, examples, option } from './options.js';
import { print } from './output.js';

/** The ids of the example repository and owner (examples/policies), so the shortcuts agree with those policies. */
const KNOWN_IDS: Record<string, string> = { 'acme/docs': '892043217', 'acme/monorepo': '903318846', acme: '51204' };

/** A stable, GitHub-like numeric id for a name the examples do not know: the same name always gets the same id. */
export function devId(name: string): string {
  const known = KNOWN_IDS[name.toLowerCase()];
  if (known) return known;
  // node:crypto is loaded here, not at the top: every verb registers this one, and only `dev token` hashes.
  const { createHash } = process.getBuiltinModule('node:crypto');
  return String(100_000_000 + (createHash('sha256').update(name.toLowerCase()).digest().readUInt32BE(0) % 900_000_000));
}

interface DevFlags {
  claim?: string[];
  claimAny?: boolean;
  repository?: string;
  event?: string;
  ref?: string;
  audience?: string;
  dataDir?: string;
}

/** The claims the shortcuts set, consistently: a repository's owner and both ids, a ref's type and workflow refs. */
export function shortcutClaims(flags: Pick<DevFlags, 'repository' | 'event' | 'ref'>): Record<string, string> {
  const claims: Record<string, string> = {};
  const repository = flags.repository ?? 'acme/docs';
  const ref = flags.ref ?? 'refs/heads/main';
  if (flags.repository !== undefined) {
    const match = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(flags.repository);
    if (!match) throw new UsageError(`--repository takes owner/name, e.g. acme/docs, got ${JSON.stringify(flags.repository)}`);
    claims.repository = repository;
    claims.repository_owner = match[1]!;
    claims.repository_id = devId(repository);
    claims.repository_owner_id = devId(match[1]!);
  }
  if (flags.ref !== undefined) {
    if (!ref.startsWith('refs/')) throw new UsageError(`--ref takes a full ref name, e.g. refs/heads/main or refs/tags/v1.2.3, got ${JSON.stringify(ref)}`);
    claims.ref = ref;
    claims.ref_type = ref.startsWith('refs/tags/') ? 'tag' : 'branch';
  }
  if (flags.repository !== undefined || flags.ref !== undefined) {
    claims.workflow_ref = `${repository}/.github/workflows/deploy.yml@${ref}`;
    claims.job_workflow_ref = `${repository}/.github/workflows/deploy.yml@${ref}`;
    claims.sub = `repo:${repository}:environment:production`;
  }
  if (flags.event !== undefined) {
    if (!(GITHUB_EVENTS as readonly string[]).includes(flags.event)) {
      throw new UsageError(`--event ${JSON.stringify(flags.event)} is not an event GitHub sends${didYouMean(flags.event, GITHUB_EVENTS)}`);
    }
    claims.event_name = flags.event;
  }
  return claims;
}

/** `--claim name=value` pairs; a name GitHub never sends is refused (a typo would silently change nothing) unless `--claim-any`. */
export async function claimOverrides(pairs: readonly string[], any: boolean): Promise<Record<string, string>> {
  // Loaded here, not at the top (as every verb's modules): the claims schema brings zod.
  const { GITHUB_CLAIM_NAMES, isGitHubClaimName } = await import('../oidc/claims.js');
  const overrides: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--claim takes name=value (an empty value removes the claim), got ${JSON.stringify(pair)}`);
    const name = pair.slice(0, eq);
    if (!any && !isGitHubClaimName(name)) {
      throw new UsageError(`--claim ${name}: not a claim GitHub sends${didYouMean(name, GITHUB_CLAIM_NAMES)}; add --claim-any to set it anyway`);
    }
    overrides[name] = pair.slice(eq + 1);
  }
  return overrides;
}

export function devCommands(program: Command, ctx: CliContext): void {
  const dev = program
    .command('dev')
    .description('local stand-ins for trying the service without GitHub')
    .addHelpText('after', examples('deploy-sts dev token --audience http://127.0.0.1:8080'));
  dev
    .command('token')
    .description('print a GitHub-shaped OIDC token from the local dev issuer (a push to main of acme/docs, production environment); serve trusts it only with --dev-issuer')
    .addOption(option('--repository <owner/name>', 'the repository, with its owner and both numeric ids set to match (stable ids; those of the examples for acme/docs)', { default: 'acme/docs' }))
    .addOption(option('--event <name>', 'event_name, e.g. pull_request_target', { default: 'push' }))
    .addOption(option('--ref <ref>', 'ref (and ref_type and the workflow refs), e.g. refs/heads/feature', { default: 'refs/heads/main' }))
    .addOption(option('--claim <name=value>', 'set any claim (repeatable); an empty value removes it. Names GitHub never sends are refused').argParser((value: string, previous: string[] = []) => [...previous, value]))
    .addOption(option('--claim-any', 'accept --claim names GitHub never sends'))
    .addOption(option('--audience <aud>', 'the aud claim', { env: 'DEPLOY_STS_AUDIENCE, else DEPLOY_STS_PUBLIC_URL', default: 'http://127.0.0.1:8080' }))
    .addOption(dataDirOption())
    .addHelpText(
      'after',
      examples(
        'deploy-sts dev token --audience http://127.0.0.1:8080',
        'deploy-sts dev token --event pull_request_target --ref refs/heads/feature',
        'deploy-sts dev token --repository acme/web --claim environment=',
      ),
    )
    .action((flags: DevFlags) =>
      ctx.run(async () => {
        const claims = { ...shortcutClaims(flags), ...(await claimOverrides(flags.claim ?? [], Boolean(flags.claimAny))) };
        const { loadDevTokenConfig } = await import('../config.js');
        const { audience, dataDir } = loadDevTokenConfig(ctx.env, { AUDIENCE: flags.audience, DATA_DIR: flags.dataDir });
        const { devToken } = await import('../dev-issuer.js');
        print(await devToken(dataDir, audience, claims));
        if (flags.repository !== undefined) {
          process.stderr.write(`dev token for ${claims.repository}: repository_id ${claims.repository_id}, repository_owner_id ${claims.repository_owner_id} (put these in its policy)\n`);
        }
        return 0;
      }),
    );
}
