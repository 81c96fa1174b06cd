/** `deploy-sts policy check` and `deploy-sts policy explain`. */
import type { Command } from 'commander';
import type { PolicyLoadOptions } from '../policy/load.js';
import { PolicyLoadError, formatPolicyProblem } from '../policy/types.js';
import type { StoredAudit } from '../storage/types.js';
import { parseTime } from '../time.js';
import { UsageError, type CliContext } from './context.js';
import { dataDirOption, examples, option } from './options.js';
import { print } from './output.js';
import { withStorage } from './records.js';

const policiesOption = () => option('--policies <dir>', 'the directory of policy files (or one file)', { env: 'DEPLOY_STS_POLICIES', default: 'policies' });

/** The issuers policies are loaded for: DEPLOY_STS_ISSUER and DEPLOY_STS_DEV_ISSUER, as `serve` loads them. */
/** The trusted issuers policies may bind, from the configuration `serve` reads (DEPLOY_STS_ISSUER, DEPLOY_STS_DEV_ISSUER). */
export async function policyLoadOptions(env: NodeJS.ProcessEnv): Promise<PolicyLoadOptions> {
  const { loadPolicyIssuers } = await import('../config.js');
  const { DEV_ISSUER } = await import('../dev-issuer.js');
  const { issuers, devIssuer } = loadPolicyIssuers(env);
  return { issuers, ...(devIssuer ? { devIssuer: DEV_ISSUER } : {}) };
}

async function check(target: string | undefined, env: NodeJS.ProcessEnv): Promise<number> {
  // Loaded here, not at the top (as every verb's modules): the other verbs start without zod and jose.
  const { loadPoliciesDir } = await import('../config.js');
  const dir = target ?? loadPoliciesDir(env);
  const { checkPolicyPath } = await import('../policy/load.js');
  const result = await checkPolicyPath(dir, await policyLoadOptions(env));
  for (const warning of result.warnings) process.stderr.write(`warning: ${formatPolicyProblem(warning)}\n`);
  if (!result.ok) {
    process.stderr.write(`${new PolicyLoadError(result.problems).message}\n${result.problems.length} problem(s) in ${dir}\n`);
    return 1;
  }
  const warned = result.warnings.length;
  print(`ok: ${result.summary}${warned ? `; ${warned} warning${warned === 1 ? '' : 's'}: condition${warned === 1 ? '' : 's'} that can never match (above)` : ''}`);
  return 0;
}

interface ExplainFlags {
  site?: string;
  token?: string;
  claims?: string;
  auditId?: string;
  jwks?: string;
  at?: string;
  policies?: string;
  audience?: string;
  dataDir?: string;
  json?: boolean;
}

async function readAudit(flags: ExplainFlags, env: NodeJS.ProcessEnv): Promise<StoredAudit | undefined> {
  const id = Number(flags.auditId);
  if (!Number.isInteger(id) || id < 1) throw new UsageError(`--audit-id takes the id of an audit record (a positive whole number; see deploy-sts audit --json), got ${JSON.stringify(flags.auditId)}`);
  return withStorage(flags.dataDir, env, ({ storage }) => storage.findAudit(id));
}

async function explain(flags: ExplainFlags, env: NodeJS.ProcessEnv): Promise<number> {
  const inputs = [flags.token, flags.claims, flags.auditId].filter((x) => x !== undefined);
  if (inputs.length !== 1) throw new UsageError('policy explain needs exactly one of --token FILE, --claims FILE|- (the JSON the Action printed) or --audit-id N');
  if (!flags.site && flags.auditId === undefined) throw new UsageError('policy explain needs --site S (the site to explain the decision for)');
  let audit: StoredAudit | undefined;
  if (flags.auditId !== undefined) {
    audit = await readAudit(flags, env);
    if (!audit) {
      process.stderr.write(`deploy-sts: no audit record ${flags.auditId} in this service's audit log (see deploy-sts audit --json; DEPLOY_STS_DATA_DIR / DEPLOY_STS_DATABASE_URL choose the log)\n`);
      return 1;
    }
  }
  const { explainCommand } = await import('../explain.js');
  const { loadPoliciesDir, loadPolicyIssuers, loadVerifierConfig } = await import('../config.js');
  const verifier = loadVerifierConfig(env, { AUDIENCE: flags.audience, DATA_DIR: flags.dataDir });
  return explainCommand(
    {
      site: flags.site ?? '',
      tokenFile: flags.token,
      claimsFile: flags.claims,
      audit,
      jwksFile: flags.jwks,
      at: flags.at === undefined ? undefined : parseTime(flags.at, 'at'),
      policies: loadPoliciesDir(env, { POLICIES: flags.policies }),
      audience: verifier.audience,
      dataDir: verifier.dataDir,
      issuers: verifier.issuers,
      devIssuer: loadPolicyIssuers(env).devIssuer,
      json: Boolean(flags.json),
    },
    print,
  );
}

export function policyCommand(program: Command, ctx: CliContext): void {
  const policy = program
    .command('policy')
    .description('check policy files, and explain why a run is granted or denied')
    .addHelpText('after', examples('deploy-sts policy check policies/', 'deploy-sts policy explain --site docs --claims claims.json --policies policies/'));

  policy
    .command('check')
    .description('validate every policy file in a directory (or one file): exit 1 with file:line:column errors; warn about conditions that can never match')
    .argument('[dir|file]', 'the policies (env DEPLOY_STS_POLICIES; default: policies)')
    .addHelpText('after', examples('deploy-sts policy check /etc/deploy-sts/policies', 'deploy-sts policy check policies/docs.yml'))
    .action((target: string | undefined) => ctx.run(() => check(target, ctx.env)));

  policy
    .command('explain')
    .description("print rule by rule, condition by condition, why a site's policy grants or denies a run: exit 0 when granted, 1 otherwise")
    .addOption(option('--site <slug>', 'the site to explain (with --audit-id: default the recorded site)'))
    .addOption(option('--token <file>', 'a GitHub OIDC token, verified offline first'))
    .addOption(option('--claims <file|->', 'the claims as JSON (- for standard input), as the Action prints them on a denial; nothing is verified'))
    .addOption(option('--audit-id <n>', 'a recorded decision (ids from deploy-sts audit --json), with the claims its audit row keeps'))
    .addOption(option('--jwks <file>', "with --token: verify with this JWK set file instead of the issuer's published keys"))
    .addOption(option('--at <time>', "with --token: check the token's times at this moment (ISO date, unix seconds, or 30m ago)", { default: 'now' }))
    .addOption(policiesOption())
    .addOption(option('--audience <aud>', 'the audience the service expects', { env: 'DEPLOY_STS_AUDIENCE, else DEPLOY_STS_PUBLIC_URL', default: "the token's own aud" }))
    .addOption(dataDirOption())
    .addOption(option('--json', 'print the explanation as JSON'))
    .addHelpText(
      'after',
      examples(
        'deploy-sts policy explain --site docs --token run.jwt --policies policies/',
        "printf '%s\\n' '{\"repository\":\"acme/docs\",\"repository_id\":\"892043217\",\"event_name\":\"push\",\"ref\":\"refs/heads/main\"}' | deploy-sts policy explain --site docs --claims - --policies policies/",
        'deploy-sts policy explain --audit-id 42 --policies policies/',
      ),
    )
    .action((flags: ExplainFlags) => ctx.run(() => explain(flags, ctx.env)));
}
