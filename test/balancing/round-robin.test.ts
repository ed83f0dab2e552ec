import { describe, expect, it } from 'vitest';
import { createBalancingPolicy, type BalancedNode, type BalancingPolicy } from '../../src/balancing/index.js';
import { countIds, node, weightedNodes } from './fixtures.js';

function pickIds(policy: BalancingPolicy, candidates: readonly BalancedNode[], picks: number): string[] {
  return Array.from({ length: picks }, () => policy.pickNode(candidates).id);
}

describe('round-robin', () => {
  it.each([
    { weights: [1], expected: 'a a a' },
    { weights: [1, 1, 1], expected: 'a b c a b c' },
    { weights: [2, 1], expected: 'a b a a b a' },
    { weights: [5, 1, 1], expected: 'a a b a c a a' }, // nginx's own example
    { weights: [1, 2, 3], expected: 'c b a c b c' },
    { weights: [4, 2, 1], expected: 'a b a c a b a' },
  ])('interleaves weights $weights as $expected', ({ weights, expected }) => {
    const sequence = pickIds(createBalancingPolicy('round-robin'), weightedNodes(...weights), 1000);
    const cycle = expected.split(' ');
    // The sequence repeats with a period of the total weight.
    expect(sequence.slice(0, cycle.length)).toEqual(cycle);
    const period = weights.reduce((sum, weight) => sum + weight, 0);
    for (let index = period; index < sequence.length; index++) {
      expect(sequence[index]).toBe(sequence[index - period]);
    }
  });

  it('ignores sessions and requests in flight', () => {
    const nodes = [node('a', { sessions: 1000, inFlight: 40 }), node('b'), node('c', { sessions: 5 })];
    expect(pickIds(createBalancingPolicy('round-robin'), nodes, 6).join(' ')).toBe('a b c a b c');
  });

  it.each([
    { weights: [1, 2, 3], picks: 600, expected: { a: 100, b: 200, c: 300 } },
    { weights: [5, 1, 1], picks: 700, expected: { a: 500, b: 100, c: 100 } },
    { weights: [1, 1000], picks: 3003, expected: { a: 3, b: 3000 } },
  ])('gives weights $weights exactly their share over $picks picks', ({ weights, picks, expected }) => {
    const picked = pickIds(createBalancingPolicy('round-robin'), weightedNodes(...weights), picks);
    expect(countIds(picked)).toEqual(expected);
  });

  it.each([{ weights: [1, 2, 3] }, { weights: [5, 1, 1] }, { weights: [3, 3, 2, 1] }, { weights: [10, 1] }])(
    'never strays more than one pick from the weighted share in any window ($weights)',
    ({ weights }) => {
      const ids = weightedNodes(...weights).map((each) => each.id);
      const totalWeight = weights.reduce((sum, weight) => sum + weight, 0);
      const sequence = pickIds(
        createBalancingPolicy('round-robin'),
        weightedNodes(...weights),
        4 * totalWeight,
      );
      for (let length = 1; length <= 2 * totalWeight; length++) {
        for (let start = 0; start + length <= sequence.length; start++) {
          const window = sequence.slice(start, start + length);
          ids.forEach((id, index) => {
            const share = ((weights[index] ?? 0) * length) / totalWeight;
            const count = window.filter((picked) => picked === id).length;
            expect(count).toBeLessThanOrEqual(Math.ceil(share) + 1);
            expect(count).toBeGreaterThanOrEqual(Math.floor(share) - 1);
          });
        }
      }
    },
  );

  it('keeps its rotation by node id when the proxy rebuilds the candidate array', () => {
    const policy = createBalancingPolicy('round-robin');
    const picks = [];
    // A fresh array of fresh objects on every call: same ids, same weights.
    for (let call = 0; call < 7; call++) picks.push(policy.pickNode(weightedNodes(5, 1, 1)).id);
    expect(picks.join(' ')).toBe('a a b a c a a');
  });

  it('shares out among the remaining nodes while one is away, and takes it back', () => {
    const [a, b, c] = weightedNodes(1, 2, 3);
    const policy = createBalancingPolicy('round-robin');
    pickIds(policy, [a, b, c], 4); // leave the rotation mid-cycle

    const whileAway = pickIds(policy, [a, c], 400);
    expect(whileAway).not.toContain('b');
    expect(Math.abs(whileAway.filter((id) => id === 'a').length - 100)).toBeLessThanOrEqual(2);

    const afterReturn = pickIds(policy, [a, b, c], 600);
    // The away node's current weight was frozen, so its return shifts each count by less
    // than two picks from the exact share; it is neither starved nor flooded.
    const counts = countIds(afterReturn);
    expect(Math.abs((counts.a ?? 0) - 100)).toBeLessThan(2);
    expect(Math.abs((counts.b ?? 0) - 200)).toBeLessThan(2);
    expect(Math.abs((counts.c ?? 0) - 300)).toBeLessThan(2);
  });

  it('gives a node added at run time its share from the start', () => {
    const policy = createBalancingPolicy('round-robin');
    const [a, b, c] = weightedNodes(1, 1, 2);
    pickIds(policy, [a, b], 5);
    const counts = countIds(pickIds(policy, [a, b, c], 400));
    expect(counts).toEqual({ a: 100, b: 100, c: 200 });
  });
});
