/** Most quanta an ActiveCounter splits its window into: 2 small typed arrays, whatever the store size. */
const MAX_QUANTA = 4096;

/**
 * Counts the sessions accessed within `activeWindowMs` without ordering or walking them: a
 * histogram of access times by quantum (a ring of ≥ `windowMs / quantumMs + 2` slots, a power
 * of two, each tagged with the quantum it counts). A touch moves one count from the old
 * quantum to the new one: O(1), no allocation, a small array that stays in cache, where moving
 * the session in an ordered list writes two random neighbours (two cache misses at 1M sessions).
 *
 * The touch path is kept short on purpose: at 1M sessions each get waits on a cache miss for
 * the entry, and the CPU overlaps the misses of consecutive gets only while the work that
 * depends on the entry's time is small. A first version that computed both quanta with `%` on
 * epoch-sized doubles (a call to fmod) cost ~300 ns per get in bench/store.ts; now the quantum
 * of `now` is cached, and only a time inside the window is divided.
 *
 * Exact within one quantum (`ceil(activeWindowMs / 4096)`, 15 ms for the default minute, 1 ms
 * for windows up to 4 s): `count` counts the quanta after the one holding `now - activeWindowMs`.
 * A quantum that has left the window never enters it again while the clock moves forward, so
 * its slot is simply retagged when a newer quantum needs it: the stale counts (sessions now idle)
 * are dropped, and a later removal from that quantum finds the tag changed and ignores it.
 * After the clock steps back, sessions touched "in the future" may be dropped from the count
 * early (they count as idle) until they are touched again; counts never go negative.
 */
export class ActiveCounter {
  readonly #windowMs: number;
  readonly #quantumMs: number;
  /** Times are counted from here, so quanta are small integers (a cheap slot mask). */
  readonly #baseMs: number;
  readonly #mask: number;
  readonly #counts: Int32Array;
  /** The quantum each slot counts (-Infinity: none yet); doubles, as 1 ms quanta pass 2^31 in 25 days. */
  readonly #quanta: Float64Array;
  /** Cached for the quantum of the last `now`: its first ms, the first ms after it, its slot. */
  #nowFromMs = Infinity;
  #nowUntilMs = -Infinity;
  #nowSlot = 0;
  /** A time at or before this is in no counted quantum at that `now`. */
  #uncountedUntilMs = -Infinity;

  constructor(activeWindowMs: number, now: number) {
    const spanMs = Math.min(activeWindowMs, 2 ** 40);
    this.#windowMs = activeWindowMs;
    this.#quantumMs = Math.max(1, Math.ceil(spanMs / MAX_QUANTA));
    this.#baseMs = now;
    const slotCount = 2 ** Math.ceil(Math.log2(Math.ceil(spanMs / this.#quantumMs) + 2));
    this.#mask = slotCount - 1;
    this.#counts = new Int32Array(slotCount);
    this.#quanta = new Float64Array(slotCount).fill(-Infinity);
  }

  /** Counts a session accessed at `at`, if that is within the window at `now`. */
  add(at: number, now: number): void {
    const quantum = this.#quantumOf(at);
    if (quantum > this.#quantumOf(now - this.#windowMs)) this.#increment(quantum);
  }

  /** Counts a session accessed at `now` (a create: `add` without its two divisions). */
  addNow(now: number): void {
    if (now >= this.#nowUntilMs || now < this.#nowFromMs) this.#refresh(now);
    if (this.#windowMs > 0) this.#counts[this.#nowSlot]!++;
  }

  /** Uncounts a session last accessed at `at` (a no-op once that quantum's slot was reused). */
  remove(at: number): void {
    const quantum = this.#quantumOf(at);
    // `&` wraps a quantum past 2^31 modulo 2^32: the low bits, so the slot, stay right.
    const slot = quantum & this.#mask;
    if (this.#quanta[slot] === quantum && this.#counts[slot]! > 0) this.#counts[slot]!--;
  }

  /** A session accessed at `at` is accessed again at `now` (> `at`). */
  touch(at: number, now: number): void {
    if (now >= this.#nowUntilMs || now < this.#nowFromMs) this.#refresh(now);
    if (at >= this.#nowFromMs) return;
    if (at > this.#uncountedUntilMs) this.remove(at);
    // A zero window counts nothing: `now` itself is already outside it.
    if (this.#windowMs > 0) this.#counts[this.#nowSlot]!++;
  }

  /** Sessions accessed after `now - activeWindowMs` (to the quantum). O(slots): for metrics, not per request. */
  count(now: number): number {
    const windowStart = this.#quantumOf(now - this.#windowMs);
    let active = 0;
    for (let slot = 0; slot <= this.#mask; slot++) {
      if (this.#quanta[slot]! > windowStart) active += this.#counts[slot]!;
    }
    return active;
  }

  #refresh(now: number): void {
    const quantum = this.#quantumOf(now);
    this.#nowFromMs = this.#baseMs + quantum * this.#quantumMs;
    this.#nowUntilMs = this.#nowFromMs + this.#quantumMs;
    this.#uncountedUntilMs = this.#baseMs + (this.#quantumOf(now - this.#windowMs) + 1) * this.#quantumMs - 1;
    this.#nowSlot = this.#claim(quantum);
  }

  #increment(quantum: number): void {
    const slot = this.#claim(quantum);
    this.#counts[slot]!++;
    // A slot retagged under the cached quantum (a time ahead of a clock that stepped back).
    if (slot === this.#nowSlot && quantum !== this.#quantumOf(this.#nowFromMs)) this.#nowUntilMs = -Infinity;
  }

  /** The slot of `quantum`, retagged (and emptied) if it counted another one. */
  #claim(quantum: number): number {
    const slot = quantum & this.#mask;
    if (this.#quanta[slot] !== quantum) {
      this.#quanta[slot] = quantum;
      this.#counts[slot] = 0;
    }
    return slot;
  }

  #quantumOf(ms: number): number {
    return Math.floor((ms - this.#baseMs) / this.#quantumMs);
  }
}
