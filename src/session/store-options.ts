import type { SessionStoreOptions } from './session-types.js';
import { MAX_SWEEP_INTERVAL_MS } from './sweeper.js';

/** SessionStoreOptions checked, with defaults filled in. */
export interface ResolvedStoreOptions {
  readonly idleTimeoutMs: number;
  readonly maxSessions: number;
  readonly activeWindowMs: number;
  readonly sweepIntervalMs: number;
  readonly sweepSliceMs: number;
  /** The injected clock; undefined means the shared once-per-turn clock (turn-clock.ts). */
  readonly now: (() => number) | undefined;
}

/** Checks every option (RangeError naming the first bad one) and fills in the defaults. */
export function resolveStoreOptions(options: SessionStoreOptions): ResolvedStoreOptions {
  const idleTimeoutMs = requireNumber('idleTimeoutMs', options.idleTimeoutMs, 1);
  return {
    idleTimeoutMs,
    maxSessions: requireNumber('maxSessions', options.maxSessions ?? Infinity, 1),
    // A window longer than the idle timeout would make every live session active.
    activeWindowMs: Math.min(
      requireNumber('activeWindowMs', options.activeWindowMs ?? 60_000, 0),
      idleTimeoutMs,
    ),
    sweepIntervalMs: requireNumber(
      'sweepIntervalMs',
      options.sweepIntervalMs ?? 1000,
      1,
      MAX_SWEEP_INTERVAL_MS,
    ),
    sweepSliceMs: requireNumber('sweepSliceMs', options.sweepSliceMs ?? 2, 0),
    now: options.now,
  };
}

function requireNumber(name: string, value: number, min: number, max = Infinity): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
    throw new RangeError(`SessionStore: ${name} must be a number in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}
