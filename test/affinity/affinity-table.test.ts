import { Agent } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { testAffinity, testRegistry } from '../helpers/affinity.js';
import type { AffinityTable } from '../../src/affinity/index.js';
import { MOVING } from '../../src/affinity/index.js';
import type { NodeRegistry } from '../../src/nodes/index.js';

const agent = new Agent();
function table(now?: () => number): { affinity: AffinityTable; registry: NodeRegistry } {
  const registry = testRegistry(['a', 'b', 'c'], agent);
  const affinity = testAffinity(registry, 100, now);
  return { affinity, registry };
}
afterEach(() => agent.destroy());

describe('AffinityTable', () => {
  it('counts sessions per node as they are recorded and deleted', () => {
    const { affinity, registry } = table();
    affinity.record('k1', 'a');
    affinity.record('k2', 'a');
    affinity.record('k3', 'b');
    affinity.delete('k1');
    expect(registry.all.map((node) => node.sessions)).toEqual([1, 1, 0]);
    expect(affinity.size).toBe(2);
  });

  it('a node a reload removes and adds back counts the sessions still pinned to it, down to 0 as they go', () => {
    const { affinity, registry } = table();
    for (const key of ['k1', 'k2', 'k3']) affinity.record(key, 'c');
    const config = registry.all.map((node) => ({ id: node.id, url: node.url, weight: 1 }));
    registry.reconcile(config.filter((node) => node.id !== 'c'));
    // Its failover moved one session before the node came back; the others are still pinned to it.
    affinity.assign('k1', 'a', 'c');
    registry.reconcile(config);
    expect(registry.get('c')?.sessions).toBe(2);
    affinity.assign('k2', 'b', 'c');
    affinity.delete('k3');
    expect(registry.all.map((node) => node.sessions)).toEqual([1, 1, 0]);
  });

  it('a node added back counts its expired sessions not yet swept: the sweep takes it to 0, not below', async () => {
    let now = 1_000_000;
    const { affinity, registry } = table(() => now);
    affinity.record('k1', 'c');
    affinity.record('k2', 'c');
    const config = registry.all.map((node) => ({ id: node.id, url: node.url, weight: 1 }));
    registry.reconcile(config.filter((node) => node.id !== 'c'));
    now += 61_000; // both past the idle timeout, not swept yet
    registry.reconcile(config);
    await affinity.store.sweep();
    expect(registry.get('c')?.sessions).toBe(0);
  });

  it('never re-pins a session when a late answer comes from its old node', () => {
    const { affinity, registry } = table();
    affinity.record('k1', 'a');
    affinity.assign('k1', 'b', 'a'); // evacuated to b
    affinity.record('k1', 'a'); // a request that was in flight on a answers now
    expect(affinity.nodeOf('k1')).toBe('b');
    expect(affinity.movedNodeOf('k1')).toBe('b');
    expect(registry.all.map((node) => node.sessions)).toEqual([0, 1, 0]);
  });

  it.each([
    ['moved away from the node its id routes to', 'b', 'a', 'b'],
    ['moved back to the node its id routes to', 'a', 'a', undefined],
  ])('tracks a session %s', (_case, to, routed, moved) => {
    const { affinity } = table();
    affinity.record('k1', 'a');
    affinity.assign('k1', 'c', 'a');
    affinity.assign('k1', to as string, routed as string);
    expect(affinity.movedNodeOf('k1')).toBe(moved);
    expect(affinity.hasMoved).toBe(moved !== undefined);
  });

  it('tells a listener every moved-session change, including removal', () => {
    const { affinity } = table();
    const changes: Array<[string, string | undefined]> = [];
    affinity.onMovedChange = (key, nodeId) => changes.push([key, nodeId]);
    affinity.record('k1', 'a');
    affinity.assign('k1', 'b', 'a');
    affinity.delete('k1');
    expect(changes).toEqual([
      ['k1', 'b'],
      ['k1', undefined],
    ]);
    expect(affinity.movedEntries()).toEqual([]);
  });

  it('sends a session being moved down the slow path until it is re-pinned', () => {
    const { affinity } = table();
    let flushes = 0;
    affinity.onMovedFlush = () => flushes++;
    affinity.record('k1', 'a');
    affinity.markMoving(['k1']);
    expect(affinity.movedNodeOf('k1')).toBe(MOVING);
    expect(flushes).toBe(1);
    affinity.assign('k1', 'b', '');
    affinity.unmarkMoving('k1'); // no-op once re-pinned
    expect(affinity.movedNodeOf('k1')).toBe('b');
  });

  it('restores a session whose move failed to the node it was on', () => {
    const { affinity } = table();
    affinity.record('k1', 'a');
    affinity.markMoving(['k1']);
    affinity.unmarkMoving('k1');
    expect(affinity.movedNodeOf('k1')).toBeUndefined();
    expect(affinity.hasMoved).toBe(false);
  });

  it('restores a moved session whose next move failed to the node an earlier move took it to', () => {
    const { affinity } = table();
    affinity.record('k1', 'a');
    affinity.assign('k1', 'b', 'a'); // failover off a: its id still routes to a
    affinity.markMoving(['k1']); // evacuate b…
    affinity.markMoving(['k1']); // (marked twice: the first mark's entry is the one kept)
    affinity.unmarkMoving('k1'); // …fails: it stays on b
    expect(affinity.nodeOf('k1')).toBe('b');
    expect(affinity.movedNodeOf('k1')).toBe('b');
  });

  it('does not restart the idle time of a session it moves: it expires with the node copy', () => {
    let nowMs = 0;
    const { affinity, registry } = table(() => nowMs);
    affinity.record('k1', 'a');
    nowMs = 30_000;
    affinity.assign('k1', 'b', 'a'); // failover off a
    nowMs = 50_000;
    affinity.assign('k1', 'c', 'a'); // and off b: nobody used the session meanwhile
    nowMs = 60_000; // idleTimeoutMs after its last use
    expect(affinity.nodeOf('k1')).toBeUndefined();
    expect(affinity.size).toBe(0);
    expect(registry.all.map((node) => node.sessions)).toEqual([0, 0, 0]);
    expect(affinity.hasMoved).toBe(false);
  });

  it('keeps the idle time a request restarted across a later move', () => {
    let nowMs = 0;
    const { affinity } = table(() => nowMs);
    affinity.record('k1', 'a');
    nowMs = 40_000;
    affinity.record('k1', 'a'); // a request: the session is in use
    affinity.assign('k1', 'b', 'a');
    nowMs = 99_999;
    expect(affinity.nodeOf('k1')).toBe('b');
  });
});
