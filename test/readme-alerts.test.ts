/** The alerting rules of docs/operating.md parse, and every metric they query is one the service exports. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { DEFAULT_METRICS_LISTEN } from '../exchange-service/config.js';
import { ROOT, exchangeToken, useIssuerAndService } from './helpers/service.js';

const running = useIssuerAndService();

describe('the alerting recipe in docs/operating.md', () => {
  it('scrapes the metrics listener (its default address), not the public port', () => {
    const readme = readFileSync(join(ROOT, 'docs', 'operating.md'), 'utf8');
    const scrape = /```yaml\n(scrape_configs:[\s\S]*?)```/.exec(readme)![1]!;
    const config = parse(scrape) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
    expect(config.scrape_configs[0]).toMatchObject({ job_name: 'deploy-sts', static_configs: [{ targets: [DEFAULT_METRICS_LISTEN] }] });
  });

  it('queries only metrics that /metrics exports', async () => {
    const readme = readFileSync(join(ROOT, 'docs', 'operating.md'), 'utf8');
    const block = /<!-- alert-rules -->\s*```yaml\n([\s\S]*?)```/.exec(readme)![1]!;
    const rules = (parse(block) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(3);

    await exchangeToken(running.svc.url, await running.issuer.token({ ref: 'refs/heads/x' })); // so labelled series exist
    const exported = new Set(
      (await (await fetch(running.svc.service.metricsUrl!)).text())
        .split('\n')
        .filter((l) => l.startsWith('# TYPE '))
        .map((l) => l.split(' ')[2]!),
    );
    for (const rule of rules) {
      const names = rule.expr.match(/deploy_sts_[a-z_]+/g) ?? [];
      // Prometheus's own `up` of the scrape job is the one other series a rule may use.
      if (names.length === 0) expect(rule.expr, rule.alert).toMatch(/^up\{job="deploy-sts"\}/);
      else expect(names.length, rule.alert).toBeGreaterThan(0);
      for (const name of names) expect(exported, `${rule.alert} uses ${name}`).toContain(name);
    }
  });
});
