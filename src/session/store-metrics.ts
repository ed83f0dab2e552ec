/**
 * Heap bytes of one session beyond its id and value: the Map slot (~30-40 bytes, the table is
 * a power of two) plus the entry object (header + 6 fields = 72 bytes).
 * Calibrated against bench/store.ts (heap after GC at 100k and 1M sessions: 293-302 bytes).
 */
const ENTRY_OVERHEAD_BYTES = 107;

/**
 * V8 heap bytes per byte of JSON for small objects: a `{}` costs 24-56 bytes for its 2
 * JSON characters, a small string 16 + length. Calibrated on the demo's small compartment tree
 * (`{"values":{"count":0}}`: 22 JSON bytes, 90 heap bytes; 112 after a structuredClone, 63
 * from JSON.parse; with an empty `children` object, as before it became optional, 36 and 152).
 */
const HEAP_BYTES_PER_JSON_BYTE = 4.2;

/**
 * Approximate heap bytes held by one session: cheap enough to sample, not exact. A value
 * JSON cannot serialise (cycle, BigInt) counts as empty.
 */
export function estimateSessionBytes(id: string, value: unknown): number {
  let json = 0;
  try {
    json = JSON.stringify(value)?.length ?? 0;
  } catch {
    json = 0;
  }
  // A sequential one-byte string: 16-byte header, characters rounded up to 8 bytes.
  const idBytes = 16 + Math.ceil(id.length / 8) * 8;
  return ENTRY_OVERHEAD_BYTES + idBytes + Math.round(json * HEAP_BYTES_PER_JSON_BYTE);
}

/**
 * Events per second over the last closed window. A window closes at the first `roll` at
 * least one second after it opened (the store rolls on every sweep tick and on `metrics()`),
 * so the rate covers 1 to ~2 s of history, or longer when nothing rolled it meanwhile.
 */
export class RateMeter {
  #windowStart: number;
  #totalAtStart = 0;
  #perSec = 0;

  constructor(now: number) {
    this.#windowStart = now;
  }

  get perSec(): number {
    return this.#perSec;
  }

  roll(now: number, total: number): void {
    const elapsedMs = now - this.#windowStart;
    if (elapsedMs < 0) {
      // The clock stepped back: start a new window.
      this.#windowStart = now;
      this.#totalAtStart = total;
    } else if (elapsedMs >= 1000) {
      this.#perSec = ((total - this.#totalAtStart) * 1000) / elapsedMs;
      this.#windowStart = now;
      this.#totalAtStart = total;
    }
  }
}

/** Entries sampled for `bytesPerSession`, and how long an estimate is reused. */
const SAMPLE_SIZE = 64;
const TTL_MS = 1000;

/** `bytesPerSession`, sampled from at most 64 sessions and reused for a second: cheap enough to poll. */
export class BytesEstimate {
  #bytes = 0;
  #estimatedAt = -Infinity;

  read(now: number, sessions: () => Iterable<{ id: string; value: unknown }>): number {
    const age = now - this.#estimatedAt;
    if (age >= 0 && age < TTL_MS) return this.#bytes;
    let sampled = 0;
    let bytes = 0;
    for (const session of sessions()) {
      bytes += estimateSessionBytes(session.id, session.value);
      if (++sampled === SAMPLE_SIZE) break;
    }
    this.#bytes = sampled === 0 ? 0 : Math.round(bytes / sampled);
    this.#estimatedAt = now;
    return this.#bytes;
  }
}

/** The store's expiry and eviction counters with their per-second rates. */
export class StoreCounters {
  expiredTotal = 0;
  evictedTotal = 0;
  readonly #expiredRate: RateMeter;
  readonly #evictedRate: RateMeter;

  constructor(now: number) {
    this.#expiredRate = new RateMeter(now);
    this.#evictedRate = new RateMeter(now);
  }

  get expiredPerSec(): number {
    return this.#expiredRate.perSec;
  }

  get evictedPerSec(): number {
    return this.#evictedRate.perSec;
  }

  /** Closes the rate windows that are at least a second old (see RateMeter). */
  roll(now: number): void {
    this.#expiredRate.roll(now, this.expiredTotal);
    this.#evictedRate.roll(now, this.evictedTotal);
  }
}
