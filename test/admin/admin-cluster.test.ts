import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startCluster, waitFor, type Cluster } from '../integration/harness.js';

let cluster: Cluster;
beforeAll(async () => {
  // Health checks that tolerate a busy machine: these tests are not about failover.
  cluster = await startCluster({ nodeCount: 3, config: { health: { interval: '500ms', timeout: '400ms' } } });
});
afterAll(async () => {
  await cluster?.close();
});

async function state(): Promise<any> {
  return (await fetch(`${cluster.adminUrl}/api/state`)).json();
}

async function post(path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${cluster.adminUrl}${path}`, {
    method: 'POST',
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: response.status, json: await response.json() };
}

describe('admin API on a real cluster', () => {
  it('POST /api/test-sessions creates real sessions through the proxy: on nodes, in the affinity table, replicated', async () => {
    const before = await state();
    const { status, json } = await post('/api/test-sessions', { count: 300 });
    expect(status).toBe(200);
    expect(json).toMatchObject({ requested: 300, created: 300, failed: 0 });
    const after = await waitFor(async () => {
      const current = await state();
      // Replica counts are taken in the background: wait until they caught up.
      return current.totals.replicas === before.sessions.total + 300 ? current : undefined;
    });
    expect(after.sessions.total).toBe(before.sessions.total + 300);
    for (const node of after.nodes) {
      expect(node.sessions).toBeGreaterThan(0);
      expect(node.replicas).toBe(node.sessions);
      // No move under way: nothing on its way to any node.
      expect(node.incoming).toBe(0);
    }
    expect(after.events.map((event: { type: string }) => event.type)).toEqual(
      expect.arrayContaining(['test-sessions:start', 'test-sessions:end']),
    );
  });

  it('reports each node’s rate, latency and status classes from proxied requests', async () => {
    const client = new Client(cluster.proxyUrl);
    for (let i = 0; i < 20; i++) await client.request('POST', '/api/counter');
    // Proxy workers report every 250 ms.
    const current = await waitFor(async () => {
      const body = await state();
      const total = body.nodes.reduce((sum: number, node: any) => sum + node.responses['2xx'], 0);
      return total >= 20 ? body : undefined;
    });
    const busy = current.nodes.filter((node: any) => node.latencyMs !== null);
    expect(busy.length).toBeGreaterThan(0);
    for (const node of busy) {
      expect(node.requestsPerSec).toBeGreaterThan(0);
      expect(node.latencyMs.p99).toBeGreaterThanOrEqual(node.latencyMs.p50);
    }
  });

  it('POST /api/sweep sweeps the affinity table and logs it', async () => {
    const { status, json } = await post('/api/sweep');
    expect(status).toBe(200);
    expect(json.affinity).toMatchObject({ expired: 0, sessions: expect.any(Number) });
    expect((await state()).affinity.sweepRuns).toBeGreaterThan(0);
  });

  it('GET /metrics reports the sessions of every node', async () => {
    const current = await state();
    const text = await (await fetch(`${cluster.adminUrl}/metrics`)).text();
    for (const node of current.nodes) {
      expect(text).toContain(`stickylb_node_sessions{node="${node.id}"} ${node.sessions}`);
    }
  });
});
