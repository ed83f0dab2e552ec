import { describe, expect, it } from 'vitest';
import { createBalancingPolicy } from '../../src/balancing/index.js';
import { node, spread, weightedNodes, type TestNode } from './fixtures.js';

describe('least-sessions', () => {
  it.each([
    {
      label: 'the fewest sessions',
      nodes: [node('a', { sessions: 5 }), node('b', { sessions: 2 }), node('c', { sessions: 7 })],
      expected: 'b',
    },
    {
      label: 'an empty node over loaded ones',
      nodes: [node('a', { sessions: 1 }), node('b', { sessions: 1 }), node('c')],
      expected: 'c',
    },
    {
      label: 'fewest per weight: 6/3 < 3/1',
      nodes: [node('a', { sessions: 3 }), node('b', { weight: 3, sessions: 6 })],
      expected: 'b',
    },
    {
      label: 'fewest per weight: 4/2 < 3/1',
      nodes: [node('a', { weight: 2, sessions: 4 }), node('b', { sessions: 3 })],
      expected: 'a',
    },
    {
      label: 'fewest per weight: 1/1 < 9/3',
      nodes: [node('a', { weight: 3, sessions: 9 }), node('b', { sessions: 1 })],
      expected: 'b',
    },
    {
      label: 'sessions moving in count: 3 + 4 incoming > 5',
      nodes: [node('a', { sessions: 3, incoming: 4 }), node('b', { sessions: 5 })],
      expected: 'b',
    },
    {
      label: 'sessions moving in count per weight: (1 + 3)/1 > 9/3',
      nodes: [node('a', { sessions: 1, incoming: 3 }), node('b', { weight: 3, sessions: 9 })],
      expected: 'b',
    },
    {
      label: 'sessions, not requests in flight',
      nodes: [node('a', { sessions: 1 }), node('b', { inFlight: 90 })],
      expected: 'b',
    },
    {
      label: 'the first on a tie, on the first call',
      nodes: [node('a', { sessions: 2 }), node('b', { sessions: 2 })],
      expected: 'a',
    },
    {
      label: 'the first tie per weight (2/1 = 4/2)',
      nodes: [node('a', { sessions: 3 }), node('b', { sessions: 2 }), node('c', { weight: 2, sessions: 4 })],
      expected: 'b',
    },
  ])('picks $label', ({ nodes, expected }) => {
    expect(createBalancingPolicy('least-sessions').pickNode(nodes).id).toBe(expected);
  });

  it.each([
    { label: 'all nodes tie', nodes: weightedNodes(1, 1, 1), expected: 'a b c a b c a' },
    {
      label: 'two of three tie',
      nodes: [node('a', { sessions: 1 }), node('b'), node('c')],
      expected: 'b c b c b c',
    },
    {
      label: 'nodes tie per weight',
      nodes: [node('a', { weight: 2, sessions: 2 }), node('b', { sessions: 1 })],
      expected: 'a b a b',
    },
    {
      label: 'a tie set at the end',
      nodes: [node('a'), node('b', { sessions: 1 }), node('c'), node('d')],
      expected: 'a c d a c d',
    },
  ])('lets tied nodes take turns while counts stand still: $label', ({ nodes, expected }) => {
    const policy = createBalancingPolicy('least-sessions');
    const picks = expected.split(' ').map(() => policy.pickNode(nodes).id);
    expect(picks.join(' ')).toBe(expected);
  });

  it.each([
    { weights: [1, 1, 1], picks: 300 },
    { weights: [1, 2, 3], picks: 600 },
    { weights: [5, 1, 1], picks: 700 },
    { weights: [1, 1, 1, 1, 1, 1, 1], picks: 1000 },
    { weights: [3, 7, 1, 1000], picks: 5000 },
  ])('keeps sessions proportional to weight $weights at every step', ({ weights, picks }) => {
    const nodes = weightedNodes(...weights);
    const totalWeight = weights.reduce((sum, weight) => sum + weight, 0);
    const policy = createBalancingPolicy('least-sessions');
    for (let pick = 1; pick <= picks; pick++) {
      policy.pickNode(nodes).sessions++;
      // A node was picked only while its ratio was the lowest and the others only grow since,
      // so (sᵢ - 1)/wᵢ ≤ sⱼ/wⱼ for every i, j. Summed over nodes, that puts each node within
      // [wᵢ·(k - n)/W, wᵢ·k/W + 1] after k picks: within ±1 of even when weights are equal.
      for (const each of nodes) {
        expect(each.sessions).toBeGreaterThanOrEqual((each.weight * (pick - nodes.length)) / totalWeight);
        expect(each.sessions).toBeLessThanOrEqual((each.weight * pick) / totalWeight + 1);
      }
    }
    // Whole rounds of the weights come out exact.
    if (picks % totalWeight === 0) {
      expect(nodes.map((each) => each.sessions)).toEqual(weights.map((w) => (w * picks) / totalWeight));
    }
  });

  it('spreads 300 new sessions within one of even over 3 equal nodes', () => {
    const nodes = weightedNodes(1, 1, 1);
    const policy = createBalancingPolicy('least-sessions');
    for (let pick = 0; pick < 300; pick++) {
      policy.pickNode(nodes).sessions++;
      expect(spread(nodes.map((each) => each.sessions))).toBeLessThanOrEqual(1);
    }
    expect(nodes.map((each) => each.sessions)).toEqual([100, 100, 100]);
  });

  it('fills a node that comes back empty before loading the others again', () => {
    const [a, b, c] = weightedNodes(1, 1, 1);
    const policy = createBalancingPolicy('least-sessions');
    const pickAndCount = (candidates: TestNode[]) => policy.pickNode(candidates).sessions++;
    for (let pick = 0; pick < 30; pick++) pickAndCount([a, b]); // c is down: its sessions were moved
    for (let pick = 0; pick < 15; pick++) pickAndCount([a, b, c]);
    expect([a.sessions, b.sessions, c.sessions]).toEqual([15, 15, 15]);
  });
});
