/** Parse a CLI time: an ISO 8601 date, unix seconds, or a duration ago (`90s`, `30m`, `12h`, `7d`). → unix seconds. */
export function parseTime(value: string, flag: string, now: number = Math.floor(Date.now() / 1000)): number {
  const v = value.trim();
  if (/^\d{9,11}$/.test(v)) return Number(v);
  const ago = /^(\d+)([smhd])$/.exec(v);
  if (ago) return now - Number(ago[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[ago[2] as 's' | 'm' | 'h' | 'd'];
  const ms = Date.parse(v);
  if (!Number.isNaN(ms) && /^\d{4}-\d{2}-\d{2}/.test(v)) return Math.floor(ms / 1000);
  throw new Error(`--${flag} ${JSON.stringify(value)} is not a time: use an ISO 8601 date (2026-11-24T10:00:00Z), unix seconds, or a duration ago (30m, 12h, 7d)`);
}
