import { describe, expect, it } from 'vitest';
import { createBalancingPolicy } from '../../src/balancing/index.js';
import { mulberry32, node, spread, weightedNodes, type TestNode } from './fixtures.js';

describe('least-connections', () => {
  it.each([
    {
      label: 'the fewest requests in flight',
      nodes: [node('a', { inFlight: 4 }), node('b', { inFlight: 1 }), node('c', { inFlight: 3 })],
      expected: 'b',
    },
    {
      label: 'an idle node over busy ones',
      nodes: [node('a', { inFlight: 1 }), node('b', { inFlight: 1 }), node('c')],
      expected: 'c',
    },
    {
      label: 'fewest per weight: 4/4 < 2/1',
      nodes: [node('a', { inFlight: 2 }), node('b', { weight: 4, inFlight: 4 })],
      expected: 'b',
    },
    {
      label: 'fewest per weight: 1/1 < 6/3',
      nodes: [node('a', { weight: 3, inFlight: 6 }), node('b', { inFlight: 1 })],
      expected: 'b',
    },
    {
      label: 'requests in flight, not sessions',
      nodes: [node('a', { sessions: 900, inFlight: 0 }), node('b', { inFlight: 1 })],
      expected: 'a',
    },
    {
      label: 'the first on a tie, on the first call',
      nodes: [node('a', { inFlight: 2 }), node('b', { inFlight: 2 })],
      expected: 'a',
    },
  ])('picks $label', ({ nodes, expected }) => {
    expect(createBalancingPolicy('least-connections').pickNode(nodes).id).toBe(expected);
  });

  it.each([
    { label: 'all nodes idle', nodes: weightedNodes(1, 1, 1), expected: 'a b c a b c' },
    {
      label: 'two of three tie',
      nodes: [node('a', { inFlight: 3 }), node('b', { inFlight: 1 }), node('c', { inFlight: 1 })],
      expected: 'b c b c',
    },
  ])('lets tied nodes take turns: $label', ({ nodes, expected }) => {
    const policy = createBalancingPolicy('least-connections');
    const picks = expected.split(' ').map(() => policy.pickNode(nodes).id);
    expect(picks.join(' ')).toBe(expected);
  });

  it.each([
    { weights: [1, 1, 1], picks: 300 },
    { weights: [1, 2, 3], picks: 600 },
  ])('keeps requests in flight proportional to weight $weights while none complete', ({ weights, picks }) => {
    const nodes = weightedNodes(...weights);
    const totalWeight = weights.reduce((sum, weight) => sum + weight, 0);
    const policy = createBalancingPolicy('least-connections');
    for (let pick = 1; pick <= picks; pick++) {
      policy.pickNode(nodes).inFlight++;
      for (const each of nodes) {
        expect(each.inFlight).toBeGreaterThanOrEqual((each.weight * (pick - nodes.length)) / totalWeight);
        expect(each.inFlight).toBeLessThanOrEqual((each.weight * pick) / totalWeight + 1);
      }
    }
  });

  it('always picks a node with the lowest in-flight ratio as requests start and finish', () => {
    const nodes = weightedNodes(1, 2, 3, 1);
    const random = mulberry32(7);
    const policy = createBalancingPolicy('least-connections');
    for (let step = 0; step < 2000; step++) {
      const picked = policy.pickNode(nodes);
      const lowest = Math.min(...nodes.map((each) => each.inFlight / each.weight));
      expect(picked.inFlight / picked.weight).toBe(lowest);
      picked.inFlight++;
      // A random request finishes about as often as one starts.
      const finished = nodes[Math.floor(random() * nodes.length)] as TestNode;
      if (finished.inFlight > 0 && random() < 0.9) finished.inFlight--;
    }
    expect(spread(nodes.map((each) => each.inFlight / each.weight))).toBeLessThanOrEqual(1);
  });
});
