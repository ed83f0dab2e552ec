/** Shortest time a count is reused. */
const MIN_AGE_MS = 2000;
/** A count is reused for at least this many times as long as it took, so counting costs ≤ 2 % of the time. */
const COST_FACTOR = 50;
/**
 * Above this many replicas a count is not taken at all: `keysOf` is one synchronous pass per
 * node (~30-150 ms for 3 nodes × 33k replicas measured here), and the proxy must not stall
 * that long. A per-owner count kept by the replica store itself would lift this limit.
 */
export const MAX_COUNTED_REPLICAS = 50_000;

/**
 * Replicas per owner node, for the dashboard. The replica store answers `keysOf(owner)` in
 * one pass over every replica, too slow to run per request of the admin API: a count is
 * reused until it is 2 s old (longer if counting took long), the next one runs in the
 * background, and readers get the latest finished count meanwhile. With more than
 * `maxRecords` replicas there is no count (`counts` is undefined).
 */
export class ReplicaCounter {
  readonly #count: () => Promise<Map<string, number>>;
  readonly #records: () => number;
  readonly #maxRecords: number;
  #counts = new Map<string, number>();
  #countedAt = -Infinity;
  #costMs = 0;
  #running: Promise<void> | undefined;
  /** Sessions moved while a count ran: that count is already out of date. */
  #isDirty = false;

  constructor(options: {
    count: () => Promise<Map<string, number>>;
    /** Replicas held now (cheap). */
    records: () => number;
    maxRecords?: number;
  }) {
    this.#count = options.count;
    this.#records = options.records;
    this.#maxRecords = options.maxRecords ?? MAX_COUNTED_REPLICAS;
  }

  /**
   * The latest count (empty before the first finishes), or undefined when there are too many
   * replicas to count; starts a new count if this one is stale.
   */
  get counts(): ReadonlyMap<string, number> | undefined {
    if (this.#records() > this.#maxRecords) return undefined;
    if (this.#isStale()) void this.refresh();
    return this.#counts;
  }

  /** Resolves once the count is not stale (at once if it is not, or if there is no count). */
  async ensureFresh(): Promise<void> {
    if (this.#records() > this.#maxRecords) return;
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
      } catch {
        // The store is closing: keep the last count.
      } finally {
        this.#costMs = performance.now() - started;
        this.#countedAt = this.#isDirty ? -Infinity : performance.now();
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  /** Sessions just moved: count again now (if there is a count). */
  invalidate(): void {
    this.#countedAt = -Infinity;
    this.#isDirty = true;
    if (this.#records() <= this.#maxRecords) void this.refresh();
  }

  #isStale(): boolean {
    return performance.now() - this.#countedAt >= Math.max(MIN_AGE_MS, this.#costMs * COST_FACTOR);
  }
}
