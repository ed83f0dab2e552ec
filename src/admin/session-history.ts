/** One sample of the timeline: sessions per node id at `at` (ms since the epoch). */
export interface HistorySample {
  at: number;
  nodes: Record<string, number>;
}

/**
 * Sessions per node over the last minutes, sampled on one unref'd timer, so a dashboard
 * opened now shows the recent past at once (the live stream then extends it). Bounded:
 * `capacity` samples, the oldest dropped first.
 */
export class SessionHistory {
  readonly intervalMs: number;
  readonly #capacity: number;
  readonly #sample: () => Iterable<{ id: string; sessions: number }>;
  readonly #samples: HistorySample[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: {
    sample: () => Iterable<{ id: string; sessions: number }>;
    intervalMs?: number;
    capacity?: number;
  }) {
    this.#sample = options.sample;
    this.intervalMs = options.intervalMs ?? 2000;
    // Ten minutes at the default interval.
    this.#capacity = options.capacity ?? 300;
  }

  /** Takes a sample now and then every `intervalMs`. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.take();
    this.#timer = setInterval(() => this.take(), this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Records the current counts. */
  take(at = Date.now()): void {
    const nodes: Record<string, number> = {};
    for (const node of this.#sample()) nodes[node.id] = node.sessions;
    this.#samples.push({ at, nodes });
    if (this.#samples.length > this.#capacity) this.#samples.shift();
  }

  /** Samples, oldest first. */
  samples(): readonly HistorySample[] {
    return this.#samples;
  }
}
