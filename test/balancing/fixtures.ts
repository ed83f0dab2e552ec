/** A node as the proxy holds it: the balancer only reads it, the test plays the proxy. */
export interface TestNode {
  id: string;
  weight: number;
  sessions: number;
  incoming: number;
  inFlight: number;
}

/** `node('a', { weight: 2, sessions: 5 })`; unset counts are 0, unset weight is 1. */
export function node(id: string, fields: Partial<Omit<TestNode, 'id'>> = {}): TestNode {
  return { id, weight: 1, sessions: 0, incoming: 0, inFlight: 0, ...fields };
}

/** Nodes named a, b, c… with these weights and no load; a tuple, so it destructures. */
export function weightedNodes<const Weights extends readonly number[]>(
  ...weights: Weights
): { -readonly [Index in keyof Weights]: TestNode } {
  const nodes = weights.map((weight, index) => node(String.fromCharCode(97 + index), { weight }));
  return nodes as { -readonly [Index in keyof Weights]: TestNode };
}

/** mulberry32: a seeded PRNG in [0, 1), so statistical tests are deterministic. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A `random` that returns these values in turn and fails the test if asked for more. */
export function scriptedRandom(values: readonly number[]): () => number {
  let next = 0;
  return () => {
    const value = values[next++];
    if (value === undefined) throw new Error(`random() called more than ${values.length} times`);
    return value;
  };
}

/** How many times each id appears in `ids`. */
export function countIds(ids: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const id of ids) counts[id] = (counts[id] ?? 0) + 1;
  return counts;
}

/** Largest minus smallest of `values`. */
export function spread(values: readonly number[]): number {
  return Math.max(...values) - Math.min(...values);
}
