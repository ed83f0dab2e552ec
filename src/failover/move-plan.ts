import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { ProxyNode } from '../nodes/index.js';

/** Keys checked in one synchronous pass, between two yields to the event loop (a few ms at most). */
export const KEYS_PER_SLICE = 8192;

/** Sessions bound for one target node, installed with one request. */
export interface MoveChunk {
  target: ProxyNode;
  keys: string[];
}

/**
 * Plans a move of many sessions: a target for each by `pickTarget` (the balancing policy),
 * each target's sessions cut into chunks of at most `chunkSize`. Targets are picked for the
 * whole move at once, every pick counted in its node's `incoming` so the policy spreads the
 * rest (chunks planned one at a time would each see the counts without the others). The
 * counts stay: the caller releases a chunk's when it has moved it (or will not), so moves
 * starting meanwhile (a request's own) see where this one is sending sessions. Chunks
 * alternate between targets, so every target's installs start together. A session for which
 * `pickTarget` throws (no node can take it) is left out, and not counted.
 */
export function planChunks(
  keys: readonly string[],
  pickTarget: () => ProxyNode,
  chunkSize: number,
): MoveChunk[] {
  const groups = new Map<ProxyNode, string[]>();
  for (const key of keys) {
    let target: ProxyNode;
    try {
      target = pickTarget();
    } catch {
      continue;
    }
    target.incoming++;
    const group = groups.get(target);
    if (group) group.push(key);
    else groups.set(target, [key]);
  }
  const perTarget: MoveChunk[][] = [];
  for (const [target, group] of groups) {
    const chunks: MoveChunk[] = [];
    for (let i = 0; i < group.length; i += chunkSize)
      chunks.push({ target, keys: group.slice(i, i + chunkSize) });
    perTarget.push(chunks);
  }
  const chunks: MoveChunk[] = [];
  for (let i = 0; perTarget.some((list) => i < list.length); i++) {
    for (const list of perTarget) {
      const chunk = list[i];
      if (chunk !== undefined) chunks.push(chunk);
    }
  }
  return chunks;
}

/**
 * The keys `keep` accepts, in order, checked in slices with a yield to the event loop between
 * them: at 1M sessions a check of every replica a dead node owned held the control plane's
 * event loop for a few hundred ms in one go (bench/scale), while requests waiting on moves
 * need it. `keep` sees the state of its own slice; moves check each key again anyway.
 */
export async function filterInSlices(
  keys: readonly string[],
  keep: (key: string) => boolean,
): Promise<string[]> {
  const kept: string[] = [];
  for (let start = 0; start < keys.length; start += KEYS_PER_SLICE) {
    if (start > 0) await yieldToEventLoop();
    const end = Math.min(keys.length, start + KEYS_PER_SLICE);
    for (let i = start; i < end; i++) {
      const key = keys[i] as string;
      if (keep(key)) kept.push(key);
    }
  }
  return kept;
}

/**
 * `first` and `second` (each without duplicates of its own) as one list without duplicates,
 * in their order. A Set of the shorter list, then the longer one checked against it in slices
 * (see `filterInSlices`): a key in both is kept where it is in `second` when that list is the
 * shorter, else where it is in `first`.
 */
export async function concatUnique(first: readonly string[], second: readonly string[]): Promise<string[]> {
  if (second.length === 0) return [...first];
  if (first.length === 0) return [...second];
  if (second.length <= first.length) {
    const inSecond = new Set(second);
    return (await filterInSlices(first, (key) => !inSecond.has(key))).concat(second);
  }
  const inFirst = new Set(first);
  return first.concat(await filterInSlices(second, (key) => !inFirst.has(key)));
}
