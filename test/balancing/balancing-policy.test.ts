import { describe, expect, it } from 'vitest';
import { createBalancingPolicy } from '../../src/balancing/index.js';
import { policies, type BalancingPolicyName } from '../../src/config/index.js';
import { NoHealthyNodeError } from '../../src/errors.js';
import { mulberry32, node, weightedNodes, type TestNode } from './fixtures.js';

// The contract every policy keeps, whatever it optimises for.
describe.each(policies)('BalancingPolicy contract: %s', (name) => {
  const create = () => createBalancingPolicy(name, mulberry32(1));

  it('reports its name', () => {
    expect(create().name).toBe(name);
  });

  it.each([
    { label: 'no load', only: node('a') },
    { label: 'heavy load', only: node('a', { weight: 7, sessions: 1000, inFlight: 50 }) },
  ])('always picks the single candidate ($label)', ({ only }) => {
    const policy = create();
    for (let call = 0; call < 20; call++) expect(policy.pickNode([only])).toBe(only);
  });

  it('throws NoHealthyNodeError on an empty candidate array (the proxy never passes one)', () => {
    const policy = create();
    expect(() => policy.pickNode([])).toThrow(NoHealthyNodeError);
    expect(() => policy.pickNode([])).toThrow(expect.objectContaining({ code: 'SLB_NO_HEALTHY_NODE' }));
    // …and is still usable afterwards.
    const only = node('a');
    expect(policy.pickNode([only])).toBe(only);
  });

  it('only reads the nodes and the array the proxy owns', () => {
    const nodes = weightedNodes(1, 2, 3).map((each) => Object.freeze(each));
    const candidates = Object.freeze([...nodes]);
    const policy = create();
    for (let call = 0; call < 30; call++) expect(candidates).toContain(policy.pickNode(candidates));
  });

  it('picks only among the current candidates as nodes leave and come back', () => {
    const [a, b, c, d] = weightedNodes(1, 2, 3, 1);
    // The proxy rebuilds the candidate array on each state change: c goes down, d is added,
    // the set shrinks to one, c comes back, a drains…
    const phases: TestNode[][] = [[a, b, c], [a, b], [a, b, d], [d], [c, d, a, b], [b, c], [a, b, c, d]];
    const policy = create();
    for (const candidates of phases) {
      for (let call = 0; call < 25; call++) {
        const picked = policy.pickNode(candidates);
        expect(candidates).toContain(picked);
        picked.sessions++;
      }
    }
  });
});

describe('createBalancingPolicy', () => {
  it('rejects a name outside the config schema with a TypeError', () => {
    expect(() => createBalancingPolicy('fastest' as BalancingPolicyName)).toThrow(TypeError);
  });

  it('gives each caller its own state', () => {
    const nodes = weightedNodes(1, 1, 1);
    const first = createBalancingPolicy('round-robin');
    expect(first.pickNode(nodes).id).toBe('a');
    expect(createBalancingPolicy('round-robin').pickNode(nodes).id).toBe('a');
    expect(first.pickNode(nodes).id).toBe('b');
  });
});
