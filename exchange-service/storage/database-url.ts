/** The PostgreSQL connection URL: what counts as one, and how to show it without its password. */

export function isPostgresUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const protocol = new URL(value).protocol;
  return protocol === 'postgres:' || protocol === 'postgresql:';
}

/**
 * The URL with every secret replaced by `***`: the password in the authority and any `password`, `sslpassword`
 * or `sslkey` query parameter. Something that does not parse is not shown at all.
 */
export function redactDatabaseUrl(value: string): string {
  if (!URL.canParse(value)) return '(an unparseable URL, not shown)';
  const url = new URL(value);
  if (url.password) url.password = '***';
  for (const name of [...url.searchParams.keys()]) {
    if (/pass|key|secret/i.test(name)) url.searchParams.set(name, '***');
  }
  return url.toString().replaceAll('%2A%2A%2A', '***');
}
