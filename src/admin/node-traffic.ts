/**
 * Upper bounds (ms) of the latency buckets; the last one catches everything slower. Fixed,
 * so a histogram is a few integer arrays: recording is an array increment, and histograms of
 * several proxy processes merge by adding them.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  0.25,
  0.5,
  1,
  2,
  3,
  5,
  7.5,
  10,
  15,
  20,
  30,
  50,
  75,
  100,
  150,
  200,
  300,
  500,
  750,
  1000,
  1500,
  2000,
  3000,
  5000,
  10_000,
  30_000,
  Infinity,
];
const BUCKETS = LATENCY_BOUNDS_MS.length;
/** Seconds of history for the rate and the percentiles (one slot per second). */
export const WINDOW_SECONDS = 10;
/** One slot more than the window: the current (partial) second never overwrites the oldest full one. */
const SLOTS = WINDOW_SECONDS + 1;

/** What the admin API shows of one node's traffic. */
export interface TrafficSummary {
  /** Answered requests per second over the last ~10 s. */
  requestsPerSec: number;
  /** Latency percentiles over the last ~10 s (interpolated within buckets); null without requests. */
  latencyMs: { p50: number; p99: number } | null;
  /** Answered requests by status class since start. */
  responses: { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number };
}

/** A node's cumulative latency histogram, for Prometheus. */
export interface LatencyHistogram {
  /** Per bucket of LATENCY_BOUNDS_MS (not cumulative). */
  counts: readonly number[];
  count: number;
  sumMs: number;
}

/** One node's counters: a ring of per-second histograms plus cumulative totals. */
class NodeCounters {
  /** SLOTS × BUCKETS counts; slot `s` holds the epoch second `slotSecond[s]`. */
  window = new Uint32Array(SLOTS * BUCKETS);
  slotSecond = new Float64Array(SLOTS).fill(-1);
  total = new Float64Array(BUCKETS);
  /** 1xx … 5xx; anything else is not counted by class. */
  byClass = new Float64Array(5);
  sumMs = 0;
  count = 0;
  /** Wall time (ms) of the first request counted. */
  firstAtMs: number;

  constructor(firstAtMs: number) {
    this.firstAtMs = firstAtMs;
  }
}

/** NodeTraffic's counters as plain data, to send from a proxy worker to the control plane. */
export type TrafficSnapshot = Record<
  string,
  {
    window: number[];
    slotSecond: number[];
    total: number[];
    byClass: number[];
    sumMs: number;
    count: number;
    firstAtMs: number;
  }
>;

/**
 * Per-node request rate, latency percentiles and status classes, fed by the proxy's
 * response-close hook. The hot path (`record`) allocates nothing: it indexes typed arrays.
 * Percentiles come from a fixed-bucket histogram over a sliding window of ~10 one-second
 * slots, so reading them costs O(buckets), never O(requests).
 *
 * With proxy workers, each worker keeps its own and sends `snapshot()` to the control
 * plane, whose NodeTraffic `absorb`s them: fixed buckets and wall-clock slots add up.
 */
export class NodeTraffic {
  readonly #nodes = new Map<string, NodeCounters>();
  /** Latest snapshot of each other process (worker id → node id → counters). */
  readonly #absorbed = new Map<string, Map<string, NodeCounters>>();
  /** Cumulative totals of processes that are gone, by node (their window is left empty). */
  readonly #retired = new Map<string, NodeCounters>();
  readonly #now: () => number;
  readonly #epochOffsetMs: number;

  /**
   * `now` is the clock request start times are taken with (default `performance.now`);
   * `epochOffsetMs` turns it into wall time (default `performance.timeOrigin`), so the
   * one-second slots of several processes line up.
   */
  constructor(now: () => number = () => performance.now(), epochOffsetMs = performance.timeOrigin) {
    this.#now = now;
    this.#epochOffsetMs = epochOffsetMs;
  }

  /** Counts one answered request of `nodeId` that started at `startedAtMs` (same clock as `now`). */
  record(nodeId: string, statusCode: number, startedAtMs: number): void {
    const nowMs = this.#now();
    const wallMs = nowMs + this.#epochOffsetMs;
    let node = this.#nodes.get(nodeId);
    if (node === undefined) {
      node = new NodeCounters(wallMs);
      this.#nodes.set(nodeId, node);
    }
    const elapsedMs = nowMs - startedAtMs;
    let bucket = 0;
    while (bucket < BUCKETS - 1 && elapsedMs > (LATENCY_BOUNDS_MS[bucket] as number)) bucket++;
    const second = Math.floor(wallMs / 1000);
    const slot = second % SLOTS;
    if (node.slotSecond[slot] !== second) {
      node.window.fill(0, slot * BUCKETS, slot * BUCKETS + BUCKETS);
      node.slotSecond[slot] = second;
    }
    (node.window[slot * BUCKETS + bucket] as number)++;
    (node.total[bucket] as number)++;
    node.count++;
    node.sumMs += elapsedMs;
    const statusClass = (statusCode / 100) | 0;
    if (statusClass >= 1 && statusClass <= 5) (node.byClass[statusClass - 1] as number)++;
  }

  /** Rate, percentiles and status classes of one node, over this process and every absorbed one. */
  summary(nodeId: string): TrafficSummary {
    const parts = this.#partsOf(nodeId);
    const byClass = new Float64Array(5);
    if (parts.length === 0) return { requestsPerSec: 0, latencyMs: null, responses: classes(byClass) };
    const nowMs = this.#now() + this.#epochOffsetMs;
    const current = Math.floor(nowMs / 1000);
    const merged = new Float64Array(BUCKETS);
    let count = 0;
    let firstAtMs = Infinity;
    for (const node of parts) {
      firstAtMs = Math.min(firstAtMs, node.firstAtMs);
      for (let i = 0; i < 5; i++) byClass[i] = (byClass[i] as number) + (node.byClass[i] as number);
      for (let slot = 0; slot < SLOTS; slot++) {
        const second = node.slotSecond[slot] as number;
        // The current partial second plus the WINDOW_SECONDS full ones before it.
        if (second < current - WINDOW_SECONDS || second > current) continue;
        for (let bucket = 0; bucket < BUCKETS; bucket++) {
          const n = node.window[slot * BUCKETS + bucket] as number;
          merged[bucket] = (merged[bucket] as number) + n;
          count += n;
        }
      }
    }
    // Seconds covered: the full ones (fewer right after the first request) and the partial one.
    const coveredMs = Math.min(WINDOW_SECONDS * 1000 + (nowMs - current * 1000), nowMs - firstAtMs);
    const requestsPerSec = count === 0 ? 0 : (count * 1000) / Math.max(coveredMs, 1000);
    return {
      requestsPerSec: round(requestsPerSec, 1),
      latencyMs:
        count === 0
          ? null
          : { p50: round(percentile(merged, count, 0.5), 2), p99: round(percentile(merged, count, 0.99), 2) },
      responses: classes(byClass),
    };
  }

  /** Cumulative latency histogram of one node since start, over every process. */
  histogram(nodeId: string): LatencyHistogram {
    const counts = new Array<number>(BUCKETS).fill(0);
    let count = 0;
    let sumMs = 0;
    for (const node of this.#partsOf(nodeId)) {
      for (let bucket = 0; bucket < BUCKETS; bucket++)
        counts[bucket] = (counts[bucket] as number) + (node.total[bucket] as number);
      count += node.count;
      sumMs += node.sumMs;
    }
    return { counts, count, sumMs };
  }

  /** This process's counters as plain data (a worker sends it to the control plane about once a second). */
  snapshot(): TrafficSnapshot {
    const snapshot: TrafficSnapshot = {};
    for (const [id, node] of this.#nodes) {
      snapshot[id] = {
        window: Array.from(node.window),
        slotSecond: Array.from(node.slotSecond),
        total: Array.from(node.total),
        byClass: Array.from(node.byClass),
        sumMs: node.sumMs,
        count: node.count,
        firstAtMs: node.firstAtMs,
      };
    }
    return snapshot;
  }

  /** Takes the latest snapshot of another process (`source`: e.g. a worker id), replacing its previous one. */
  absorb(source: string, snapshot: TrafficSnapshot): void {
    const nodes = new Map<string, NodeCounters>();
    for (const [id, data] of Object.entries(snapshot)) {
      if (data.window.length !== SLOTS * BUCKETS || data.total.length !== BUCKETS) continue;
      const node = new NodeCounters(data.firstAtMs);
      node.window = Uint32Array.from(data.window);
      node.slotSecond = Float64Array.from(data.slotSecond);
      node.total = Float64Array.from(data.total);
      node.byClass = Float64Array.from(data.byClass);
      node.sumMs = data.sumMs;
      node.count = data.count;
      nodes.set(id, node);
    }
    this.#absorbed.set(source, nodes);
  }

  /**
   * A process is gone: its cumulative totals join the retired ones, so the counters and the
   * histogram never go backwards (Prometheus would read a drop as a reset and `rate()` would
   * show a false spike). Its last seconds leave the rate and percentiles, which are windows.
   */
  retire(source: string): void {
    const nodes = this.#absorbed.get(source);
    if (nodes === undefined) return;
    this.#absorbed.delete(source);
    for (const [id, part] of nodes) {
      let retired = this.#retired.get(id);
      if (retired === undefined) {
        retired = new NodeCounters(part.firstAtMs);
        this.#retired.set(id, retired);
      }
      retired.firstAtMs = Math.min(retired.firstAtMs, part.firstAtMs);
      for (let bucket = 0; bucket < BUCKETS; bucket++)
        retired.total[bucket] = (retired.total[bucket] as number) + (part.total[bucket] as number);
      for (let i = 0; i < 5; i++)
        retired.byClass[i] = (retired.byClass[i] as number) + (part.byClass[i] as number);
      retired.sumMs += part.sumMs;
      retired.count += part.count;
    }
  }

  /** Forgets nodes no longer configured. */
  retain(nodeIds: ReadonlySet<string>): void {
    for (const id of this.#nodes.keys()) if (!nodeIds.has(id)) this.#nodes.delete(id);
    for (const id of this.#retired.keys()) if (!nodeIds.has(id)) this.#retired.delete(id);
    for (const nodes of this.#absorbed.values())
      for (const id of nodes.keys()) if (!nodeIds.has(id)) nodes.delete(id);
  }

  #partsOf(nodeId: string): NodeCounters[] {
    const parts: NodeCounters[] = [];
    const own = this.#nodes.get(nodeId);
    if (own !== undefined) parts.push(own);
    const retired = this.#retired.get(nodeId);
    if (retired !== undefined) parts.push(retired);
    for (const nodes of this.#absorbed.values()) {
      const part = nodes.get(nodeId);
      if (part !== undefined) parts.push(part);
    }
    return parts;
  }
}

/**
 * The q-quantile of a bucketed distribution, interpolated linearly inside its bucket (as
 * Prometheus' histogram_quantile does). The open last bucket answers its lower bound.
 */
export function percentile(counts: ArrayLike<number>, total: number, q: number): number {
  const rank = q * total;
  let seen = 0;
  for (let bucket = 0; bucket < counts.length; bucket++) {
    const n = counts[bucket] as number;
    if (n === 0 || seen + n < rank) {
      seen += n;
      continue;
    }
    const lower = bucket === 0 ? 0 : (LATENCY_BOUNDS_MS[bucket - 1] as number);
    const upper = LATENCY_BOUNDS_MS[bucket] as number;
    if (upper === Infinity) return lower;
    return lower + ((upper - lower) * (rank - seen)) / n;
  }
  return 0;
}

function classes(byClass: Float64Array): TrafficSummary['responses'] {
  return {
    '1xx': byClass[0] as number,
    '2xx': byClass[1] as number,
    '3xx': byClass[2] as number,
    '4xx': byClass[3] as number,
    '5xx': byClass[4] as number,
  };
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
