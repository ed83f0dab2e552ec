import { describe, expect, it } from 'vitest';
import { createBalancingPolicy } from '../../src/balancing/index.js';
import {
  countIds,
  mulberry32,
  node,
  scriptedRandom,
  spread,
  weightedNodes,
  type TestNode,
} from './fixtures.js';

const ratio = (each: TestNode) => each.sessions / each.weight;

describe('random-two-choices', () => {
  it.each([
    {
      label: 'the less loaded of the two drawn, though a third is emptier',
      nodes: [node('a', { sessions: 5 }), node('b', { sessions: 2 }), node('c')],
      random: [0, 0], // a, then b (a cannot be drawn twice)
      expected: 'b',
    },
    {
      label: 'the less loaded of the two drawn, in either order',
      nodes: [node('a', { sessions: 1 }), node('b'), node('c', { sessions: 3 })],
      random: [0.9, 0.1], // c, then a
      expected: 'a',
    },
    {
      label: 'the first drawn on a tie',
      nodes: [node('a', { sessions: 1 }), node('b', { sessions: 1 }), node('c', { sessions: 1 })],
      random: [0.5, 0], // b, then a
      expected: 'b',
    },
    {
      label: 'among nodes drawn by weight',
      nodes: [node('a', { sessions: 2 }), node('b', { weight: 3 }), node('c', { sessions: 1 })],
      random: [0.1, 0.9], // tickets 0.5 of 5 → a; 3.6 of the remaining 4 → c
      expected: 'c',
    },
    {
      label: 'fewer sessions per weight (3/2 < 2/1)',
      nodes: [node('a', { weight: 2, sessions: 3 }), node('b', { sessions: 2 })],
      random: [0, 0],
      expected: 'a',
    },
    {
      label: 'the less loaded of two candidates, whatever is drawn first',
      nodes: [node('a', { sessions: 4 }), node('b', { sessions: 1 })],
      random: [0.99, 0.5],
      expected: 'b',
    },
    {
      label: 'sessions moving in count (2 + 3 incoming > 4)',
      nodes: [node('a', { sessions: 2, incoming: 3 }), node('b', { sessions: 4 })],
      random: [0, 0],
      expected: 'b',
    },
    {
      label: 'sessions, not requests in flight',
      nodes: [node('a', { sessions: 1 }), node('b', { inFlight: 30 })],
      random: [0, 0],
      expected: 'b',
    },
    {
      label: 'a candidate even when random() breaks its contract and returns 1',
      nodes: weightedNodes(1, 1, 1),
      random: [1, 1], // falls back to the last eligible: c, then b
      expected: 'c',
    },
  ])('picks $label', ({ nodes, random, expected }) => {
    expect(createBalancingPolicy('random-two-choices', scriptedRandom(random)).pickNode(nodes).id).toBe(
      expected,
    );
  });

  it('does not call random() for a single candidate', () => {
    const only = node('a');
    expect(createBalancingPolicy('random-two-choices', scriptedRandom([])).pickNode([only])).toBe(only);
  });

  it('draws nodes in proportion to weight', () => {
    // With equal loads the first node drawn wins, so picks follow the first draw.
    const nodes = weightedNodes(1, 2, 3);
    const policy = createBalancingPolicy('random-two-choices', mulberry32(42));
    const counts = countIds(Array.from({ length: 60_000 }, () => policy.pickNode(nodes).id));
    // ±1,200 is more than ten standard deviations of each count.
    expect(Math.abs((counts.a ?? 0) - 10_000)).toBeLessThan(1_200);
    expect(Math.abs((counts.b ?? 0) - 20_000)).toBeLessThan(1_200);
    expect(Math.abs((counts.c ?? 0) - 30_000)).toBeLessThan(1_200);
  });

  it.each([{ weights: [1, 1, 1] }, { weights: [1, 2, 3] }, { weights: [1, 1, 1, 1, 5] }])(
    'never picks the one most loaded candidate ($weights)',
    ({ weights }) => {
      // The pick is never more loaded than the other node drawn, whatever random() returns.
      const nodes = weightedNodes(...weights);
      const random = mulberry32(3);
      const policy = createBalancingPolicy('random-two-choices', mulberry32(4));
      for (let step = 0; step < 5_000; step++) {
        for (const each of nodes) each.sessions = Math.floor(random() * 6);
        const picked = policy.pickNode(nodes);
        const othersMax = Math.max(...nodes.filter((each) => each !== picked).map(ratio));
        expect(ratio(picked)).toBeLessThanOrEqual(othersMax);
      }
    },
  );

  // Not a hard guarantee (an unlucky run of draws can skip the emptiest node), but the gap of
  // two choices stays O(1) however many sessions are placed, where one random choice drifts
  // apart like √k. Simulated over 20,000 seeds, 99.9 % end 300 or 3,000 picks within 3.
  it.each(Array.from({ length: 20 }, (_, index) => ({ seed: index + 1 })))(
    'keeps 3 equal nodes within 3 sessions of each other after 300 and 3,000 new sessions (seed $seed)',
    ({ seed }) => {
      const nodes = weightedNodes(1, 1, 1);
      const policy = createBalancingPolicy('random-two-choices', mulberry32(seed));
      for (let pick = 1; pick <= 3_000; pick++) {
        policy.pickNode(nodes).sessions++;
        if (pick === 300 || pick === 3_000) expect(spread(nodes.map(ratio))).toBeLessThanOrEqual(3);
      }
    },
  );

  // Same caveat; 99.98 % of 20,000 simulated seeds end within 3.
  it.each(Array.from({ length: 10 }, (_, index) => ({ seed: index + 1 })))(
    'keeps weights 1:2:3 within 3 sessions per weight after 600 new sessions (seed $seed)',
    ({ seed }) => {
      const nodes = weightedNodes(1, 2, 3);
      const policy = createBalancingPolicy('random-two-choices', mulberry32(seed));
      for (let pick = 0; pick < 600; pick++) policy.pickNode(nodes).sessions++;
      expect(spread(nodes.map(ratio))).toBeLessThanOrEqual(3);
    },
  );
});
