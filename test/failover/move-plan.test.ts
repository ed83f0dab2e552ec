import { Agent } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { testRegistry } from '../helpers/affinity.js';
import { sessionLoad } from '../../src/balancing/index.js';
import { concatUnique, filterInSlices, planChunks } from '../../src/failover/move-plan.js';
import type { NodeRegistry } from '../../src/nodes/index.js';
import { type ProxyNode } from '../../src/nodes/index.js';

const agent = new Agent();
afterEach(() => agent.destroy());

/** Nodes b and c holding `sessions` each; least-sessions picks, moving-in counted (ties: the first). */
function nodes(sessions: Record<string, number>): { registry: NodeRegistry; pick: () => ProxyNode } {
  const registry = testRegistry(Object.keys(sessions), agent);
  for (const node of registry.all) node.sessions = sessions[node.id] as number;
  const pick = (): ProxyNode =>
    [...registry.candidates].sort((x, y) => sessionLoad(x) - sessionLoad(y))[0] as ProxyNode;
  return { registry, pick };
}

const keys = (count: number): string[] => Array.from({ length: count }, (_, i) => `k${i}`);

describe('planChunks', () => {
  it.each([
    { sessions: { b: 0, c: 0 }, count: 10, chunkSize: 3, expected: { b: 5, c: 5 } },
    { sessions: { b: 4, c: 0 }, count: 10, chunkSize: 4, expected: { b: 3, c: 7 } },
    { sessions: { b: 0, c: 100 }, count: 7, chunkSize: 2, expected: { b: 7, c: 0 } },
  ])(
    'spreads $count sessions over $sessions by the policy as one move, in chunks of $chunkSize',
    ({ sessions, count, chunkSize, expected }) => {
      const { registry, pick } = nodes(sessions);
      const chunks = planChunks(keys(count), pick, chunkSize);
      const planned: Record<string, number> = { b: 0, c: 0 };
      for (const chunk of chunks) {
        expect(chunk.keys.length).toBeLessThanOrEqual(chunkSize);
        planned[chunk.target.id] = (planned[chunk.target.id] ?? 0) + chunk.keys.length;
      }
      expect(planned).toEqual(expected);
      expect(chunks.flatMap((chunk) => chunk.keys).sort()).toEqual(keys(count).sort());
      // Sessions are counted when re-pinned (by the affinity table); until then, as incoming.
      expect(Object.fromEntries(registry.all.map((node) => [node.id, node.sessions]))).toEqual(sessions);
      expect(Object.fromEntries(registry.all.map((node) => [node.id, node.incoming]))).toEqual(expected);
    },
  );

  it('alternates targets, so the first installs go to every target at once', () => {
    const { pick } = nodes({ b: 0, c: 0 });
    const chunks = planChunks(keys(12), pick, 3);
    expect(chunks.map((chunk) => chunk.target.id)).toEqual(['b', 'c', 'b', 'c']);
  });

  it('leaves out sessions no node can take', () => {
    const chunks = planChunks(
      keys(5),
      () => {
        throw new Error('no node');
      },
      2,
    );
    expect(chunks).toEqual([]);
  });
});

describe('filterInSlices', () => {
  it.each([
    { case: 'some kept', keys: ['a', 'b', 'c', 'd'], kept: ['b', 'd'] },
    { case: 'none kept', keys: ['a', 'c'], kept: [] },
    { case: 'no keys', keys: [], kept: [] },
  ])('keeps the keys the test accepts, in order: $case', async ({ keys: given, kept }) => {
    expect(await filterInSlices(given, (key) => key === 'b' || key === 'd')).toEqual(kept);
  });

  it('lets the event loop run between slices of a long list, and checks every key once', async () => {
    const given = keys(50_000);
    const checked: string[] = [];
    // Counts event-loop turns while the filter runs: one per turn, through the check phase.
    let turns = 0;
    let isFiltering = true;
    const count = (): void => {
      turns++;
      if (isFiltering) setImmediate(count);
    };
    setImmediate(count);
    const kept = await filterInSlices(given, (key) => {
      checked.push(key);
      return key.endsWith('7');
    });
    isFiltering = false;
    expect(checked).toEqual(given);
    expect(kept).toEqual(given.filter((key) => key.endsWith('7')));
    // 50 000 keys in slices of 8192: a turn after each of its first 6 slices.
    expect(turns).toBeGreaterThanOrEqual(6);
  });
});

describe('concatUnique', () => {
  it.each([
    { case: 'no overlap', first: ['a', 'b'], second: ['c'], all: ['a', 'b', 'c'] },
    { case: 'a shorter second list', first: ['a', 'b', 'c'], second: ['b'], all: ['a', 'c', 'b'] },
    { case: 'a longer second list', first: ['b'], second: ['a', 'b', 'c'], all: ['b', 'a', 'c'] },
    { case: 'an empty second list', first: ['a', 'b'], second: [], all: ['a', 'b'] },
    { case: 'an empty first list', first: [], second: ['x', 'y'], all: ['x', 'y'] },
  ])('lists every key once, in order: $case', async ({ first, second, all }) => {
    expect(await concatUnique(first, second)).toEqual(all);
  });

  it('merges lists longer than a slice', async () => {
    const first = keys(20_000);
    const second = keys(30_000).reverse();
    const all = await concatUnique(first, second);
    expect(all).toHaveLength(30_000);
    expect(new Set(all).size).toBe(30_000);
    expect(all.slice(0, 20_000)).toEqual(first);
  });
});
