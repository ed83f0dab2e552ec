import type { Agent } from 'node:http';
import { AffinityTable } from '../../src/affinity/index.js';
import { NodeRegistry } from '../../src/nodes/index.js';

/**
 * A registry of the nodes `ids`, at http://127.0.0.1:9001, :9002… Nothing listens there:
 * tests that only count and pick use it; tests that send requests bring their own nodes.
 */
export function testRegistry(ids: readonly string[], agent: Agent): NodeRegistry {
  return new NodeRegistry(
    ids.map((id, i) => ({ id, url: `http://127.0.0.1:${9001 + i}`, weight: 1 })),
    { routeOf: (id) => `r-${id}`, agent },
  );
}

/**
 * An affinity table over `registry`: 60 s idle timeout, 1 s sweep interval and active window;
 * `now` replaces the store's clock.
 */
export function testAffinity(registry: NodeRegistry, maxSessions: number, now?: () => number): AffinityTable {
  return new AffinityTable({
    registry,
    idleTimeoutMs: 60_000,
    maxSessions,
    sweepIntervalMs: 1000,
    activeWindowMs: 1000,
    ...(now !== undefined ? { now } : {}),
  });
}
