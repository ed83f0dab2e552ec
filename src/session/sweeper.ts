import { performance } from 'node:perf_hooks';
import { CLOCK_CHECK_EVERY } from './access-list.js';

/** setInterval's limit: a longer delay silently becomes 1 ms. */
export const MAX_SWEEP_INTERVAL_MS = 2 ** 31 - 1;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** What a Sweeper needs from its store: a narrow view, so the sweep knows nothing else of it. */
export interface SweepTarget {
  /** The store's clock. */
  now(): number;
  /** Called once before the first slice of a sweep. */
  beginSweep(now: number): void;
  /** Expires the least recently used session if it is expired at `now`; false when none is. */
  expireOldest(now: number): boolean;
  /** Other time-boxed upkeep after the expired ones (the active boundary); false when cut short. */
  finishSlice(now: number, started: number, sliceMs: number): boolean;
}

/**
 * Runs a store's sweep: slices that pop expired sessions from the head of the access list until
 * a live one (so the cost follows the expired count, not the total), each time-boxed, with a
 * `setImmediate` yield between them so the event loop is never blocked for long; one unref'd
 * interval per store (never a timer per session). Keeps the sweep's own metrics.
 */
export class Sweeper {
  readonly #target: SweepTarget;
  readonly #intervalMs: number;
  readonly #sliceMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #runs = 0;
  #longestSliceMs = 0;
  #longestSliceCpuMs = 0;
  #lastSweepMs = 0;

  constructor(target: SweepTarget, intervalMs: number, sliceMs: number) {
    this.#target = target;
    this.#intervalMs = intervalMs;
    this.#sliceMs = sliceMs;
  }

  /** Completed sweeps. */
  get runs(): number {
    return this.#runs;
  }

  /** The longest slice so far: the longest the sweep held the event loop. */
  get longestSliceMs(): number {
    return this.#longestSliceMs;
  }

  /**
   * The longest slice in process CPU time: on a loaded machine the wall time of a slice also
   * counts the time the process waited for a core, which no time box can prevent. Helper
   * threads (GC, compiler) running meanwhile count too: an upper bound of the slice's own cost.
   */
  get longestSliceCpuMs(): number {
    return this.#longestSliceCpuMs;
  }

  /** Busy time (slices, not yields) of the last completed sweep. */
  get lastSweepMs(): number {
    return this.#lastSweepMs;
  }

  /** One full sweep now; resolves to the number expired. A sweep already running is joined. */
  sweep(): Promise<number> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Starts the periodic sweep (idempotent). */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      // A listener that throws is an uncaught exception, as with any EventEmitter listener.
      if (this.#running === undefined) this.sweep().catch(rethrowAsync);
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /** Stops the periodic sweep (a sweep in progress finishes). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #run(): Promise<number> {
    const target = this.#target;
    let expired = 0;
    let busyMs = 0;
    target.beginSweep(target.now());
    for (;;) {
      const cpuAtStart = process.cpuUsage();
      const started = performance.now();
      const sliceExpired = this.#slice(started);
      const sliceMs = performance.now() - started;
      const cpu = process.cpuUsage(cpuAtStart);
      const sliceCpuMs = (cpu.user + cpu.system) / 1000;
      busyMs += sliceMs;
      if (sliceMs > this.#longestSliceMs) this.#longestSliceMs = sliceMs;
      if (sliceCpuMs > this.#longestSliceCpuMs) this.#longestSliceCpuMs = sliceCpuMs;
      if (sliceExpired >= 0) {
        expired += sliceExpired;
        break;
      }
      expired += -1 - sliceExpired;
      await yieldToEventLoop();
    }
    this.#runs++;
    this.#lastSweepMs = busyMs;
    return expired;
  }

  /** One slice: the count expired when the sweep is done, `-1 - count` when the time box cut it short. */
  #slice(started: number): number {
    const target = this.#target;
    const now = target.now();
    let expired = 0;
    while (target.expireOldest(now)) {
      // Reading the clock costs about as much as expiring an entry: check it every 64.
      if (++expired % CLOCK_CHECK_EVERY === 0 && performance.now() - started >= this.#sliceMs) {
        return -1 - expired;
      }
    }
    return target.finishSlice(now, started, this.#sliceMs) ? expired : -1 - expired;
  }
}

function rethrowAsync(error: unknown): void {
  process.nextTick(() => {
    throw error;
  });
}
