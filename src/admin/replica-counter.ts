/** Shortest time a count is reused. */
const MIN_AGE_MS = 2000;
/** A count is reused for at least this many times as long as it took, so counting costs ≤ 2 % of the time. */
const COST_FACTOR = 50;
/**
 * Replicas per owner node, for the dashboard. The replica store answers `countsByOwner()`
 * (a round trip to Redis, or a copy of the memory store's running counts): a count is reused
 * until it is 2 s old (longer if counting took long), the next one runs in the background,
 * and readers get the latest finished count meanwhile.
 */
export class ReplicaCounter {
  readonly #count: () => Promise<Map<string, number>>;
  /** Undefined until a count succeeds. */
  #counts: Map<string, number> | undefined;
  #countedAt = -Infinity;
  #costMs = 0;
  #running: Promise<void> | undefined;
  /** Sessions moved while a count ran: that count is already out of date. */
  #isDirty = false;

  constructor(options: { count: () => Promise<Map<string, number>> }) {
    this.#count = options.count;
  }

  /**
   * The latest count, or undefined while none has succeeded (the store is not reachable yet);
   * starts a new count if this one is stale.
   */
  get counts(): ReadonlyMap<string, number> | undefined {
    if (this.#isStale()) void this.refresh();
    return this.#counts;
  }

  /** Resolves once the count is not stale (at once if it is not). */
  async ensureFresh(): Promise<void> {
    if (this.#isStale() || this.#running !== undefined) await this.refresh();
  }

  /** Counts now (joins a count under way). */
  refresh(): Promise<void> {
    this.#running ??= (async () => {
      // Settles after the assignment above, even if counting throws at once.
      await Promise.resolve();
      this.#isDirty = false;
      const started = performance.now();
      try {
        this.#counts = await this.#count();
        this.#costMs = performance.now() - started;
        this.#countedAt = this.#isDirty ? -Infinity : performance.now();
      } catch {
        // The store is unreachable or closing: keep the last count and try again after
        // MIN_AGE_MS (a failure's cost, a timeout, must not stretch the wait 50-fold).
        this.#costMs = 0;
        this.#countedAt = performance.now();
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  /** Sessions just moved: count again now. */
  invalidate(): void {
    this.#countedAt = -Infinity;
    this.#isDirty = true;
    void this.refresh();
  }

  #isStale(): boolean {
    return performance.now() - this.#countedAt >= Math.max(MIN_AGE_MS, this.#costMs * COST_FACTOR);
  }
}
