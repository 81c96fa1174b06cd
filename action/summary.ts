/**
 * The job summary of a successful exchange: site, context, scope, expiry and the rule that granted it.
 * Never the token.
 */
import type { IssuedToken } from './exchange-client.js';

export interface SummaryRow {
  label: string;
  value: string;
}

export function summaryRows(issued: IssuedToken): SummaryRow[] {
  const minutes = Math.round(issued.expiresIn / 60);
  return [
    { label: 'Site', value: issued.site },
    { label: 'Context', value: issued.context },
    { label: 'Scope', value: issued.scope.length > 0 ? issued.scope.join(' ') : '(none)' },
    { label: 'Expires', value: `${issued.expiresAt.toISOString()} (in ${minutes > 0 ? `${minutes} min` : `${issued.expiresIn} s`})` },
    { label: 'Granted by rule', value: issued.rule },
  ];
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The summary as HTML (what `core.summary` writes), values escaped. */
export function summaryHtml(issued: IssuedToken): string {
  const rows = summaryRows(issued)
    .map((r) => `<tr><th align="left">${escapeHtml(r.label)}</th><td>${r.label === 'Context' || r.label === 'Scope' ? `<code>${escapeHtml(r.value)}</code>` : escapeHtml(r.value)}</td></tr>`)
    .join('');
  const headline = issued.context === 'production' ? 'deploy-sts: production deploy token issued' : 'deploy-sts: preview deploy token issued';
  return `<h3>${escapeHtml(headline)}</h3>\n<table>${rows}</table>\n`;
}

/** Log lines for the step output (same facts, no token). */
export function summaryLines(issued: IssuedToken): string[] {
  return summaryRows(issued).map((r) => `${r.label}: ${r.value}`);
}
