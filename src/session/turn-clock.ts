/**
 * Captured when this module loads, so a test that fakes timers (vitest's default fakes
 * `setImmediate`) cannot hold back the refresh: a refresh queued on a fake `setImmediate`
 * would never run, and the clock would stand still for good.
 */
const queueRefresh = globalThis.setImmediate;

/**
 * `Date.now()` read once per event-loop turn, as nginx (`ngx_time_update` once per loop
 * iteration) and HAProxy (`now_ms`) do. The first read in a turn reads the wall clock and
 * queues a `setImmediate` that marks the value stale; every later read until then returns the
 * cached value. Under load one loop iteration runs many callbacks, so the stores of a process
 * pay one `Date.now()` and one `setImmediate` per iteration instead of a `Date.now()` per
 * operation (bench/store.ts measures what is left of get's cost).
 *
 * Accuracy bound: a read never runs ahead of the wall clock, and lags it by the event loop's
 * work since the turn's first read. The refresh runs in the next check phase (where
 * `setImmediate` callbacks run): normally the end of the current iteration, but a first read
 * made in the check phase itself is refreshed only in the next iteration's, so the lag is at
 * most about two iterations of callback work. While a refresh is queued the loop does not
 * wait for I/O, so idle time never adds to it.
 * Expiry is therefore exact to one loop turn. The sweep cannot stretch that much: its slices
 * are time-boxed (`sweepSliceMs`, 2 ms) and yield through `setImmediate`, so a slice adds at
 * most its time box. Only a long synchronous handler (a huge JSON.parse, say) delays the next
 * reading, by its own length, as it delays every timer of the process.
 */
export class TurnClock {
  #now = 0;
  #isFresh = false;
  /** Allocated once: a refresh per turn allocates no closure. */
  readonly #markStale = (): void => {
    this.#isFresh = false;
  };

  /** The wall clock in ms as of this turn's first read. */
  now(): number {
    if (this.#isFresh) return this.#now;
    this.#isFresh = true;
    queueRefresh(this.#markStale);
    return (this.#now = Date.now());
  }
}

/** The process-wide clock of every store without an injected `now`: one refresh per turn, however many stores. */
export const turnClock = new TurnClock();
