import { backoffMs } from '../backoff.js';

/** A worker up this long before dying was not crash-looping: the backoff starts over. */
export const STABLE_UPTIME_MS = 10_000;
const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 5_000;

/**
 * How long to wait before replacing a dead proxy worker. The first death is replaced at once;
 * when replacements keep dying soon after their fork (a port taken, a bad build, a crash at
 * start-up), each waits twice as long as the last, up to MAX_DELAY_MS, instead of forking in a
 * tight loop that eats the CPU the surviving workers serve with.
 */
export class RespawnBackoff {
  /** Deaths in a row, each within STABLE_UPTIME_MS of its worker's fork. */
  #quickDeaths = 0;

  /** Records a death after `uptimeMs`; returns the delay before its replacement (ms). */
  next(uptimeMs: number): number {
    this.#quickDeaths = uptimeMs < STABLE_UPTIME_MS ? this.#quickDeaths + 1 : 0;
    return backoffMs(this.#quickDeaths, FIRST_DELAY_MS, MAX_DELAY_MS);
  }
}
