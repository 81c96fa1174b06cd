/** Summaries of latency samples and small formatting helpers shared by the benchmark's parts. */

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Percentiles (nearest rank) of millisecond samples; sorts the array in place. */
export function summarise(samples: Float64Array): LatencySummary {
  samples.sort();
  const n = samples.length;
  if (n === 0) return { p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  const at = (q: number) => samples[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
  let sum = 0;
  for (const v of samples) sum += v;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: samples[n - 1]!, mean: sum / n };
}

export const round = (value: number, digits = 2): number => {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
};

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export const mb = (bytes: number): number => round(bytes / (1024 * 1024), 1);

/** Text from a failed request or run may hold a token (a response, an add-mask command): never print one. */
export const redactTokens = (text: string): string => text.replace(/[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, '[token]');
