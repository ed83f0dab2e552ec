import type { Config } from '../config/index.js';

/** HAProxy's knobs: probe every `intervalMs`, down after `fall` failures, up after `rise` successes. */
export interface HealthSettings {
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
  /** Probed as `{url}{path}`; starts with `/`. */
  path: string;
}

/** Outside 1 … 2^31-1 ms, Node's timers silently fire after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The checker's settings from the validated config (durations there are already in ms). */
export function healthSettingsFrom(health: Config['health']): HealthSettings {
  const { interval, timeout, rise, fall, path } = health;
  return { intervalMs: interval, timeoutMs: timeout, rise, fall, path };
}

/** Returns a copy of the settings, or throws a RangeError listing every problem (nothing is clamped). */
export function validateHealthSettings(settings: HealthSettings): HealthSettings {
  const { intervalMs, timeoutMs, rise, fall, path } = settings;
  const problems: string[] = [];
  if (!(intervalMs >= 1 && intervalMs <= MAX_TIMER_MS))
    problems.push(`intervalMs out of range: ${intervalMs}`);
  if (!(timeoutMs >= 1 && timeoutMs <= MAX_TIMER_MS)) problems.push(`timeoutMs out of range: ${timeoutMs}`);
  if (!Number.isInteger(rise) || rise < 1) problems.push(`rise must be an integer ≥ 1, got ${rise}`);
  if (!Number.isInteger(fall) || fall < 1) problems.push(`fall must be an integer ≥ 1, got ${fall}`);
  if (!path.startsWith('/')) problems.push(`path must start with /, got ${JSON.stringify(path)}`);
  if (problems.length > 0) throw new RangeError(`invalid health settings: ${problems.join('; ')}`);
  return { intervalMs, timeoutMs, rise, fall, path };
}
