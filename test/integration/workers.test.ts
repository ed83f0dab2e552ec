import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startCluster, waitFor, type Cluster } from './harness.js';

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster({ nodeCount: 2, config: { proxy: { workers: 2 } } });
});
afterAll(async () => {
  await cluster?.close();
});

describe('multi-process data plane', () => {
  it('runs two workers sharing the client port', async () => {
    const state = (await (await fetch(`${cluster.adminUrl}/api/state`)).json()) as {
      workers: { count: number; pids: number[] };
    };
    expect(state.workers.count).toBe(2);
    expect(new Set(state.workers.pids).size).toBe(2);
    expect(state.workers.pids).not.toContain(process.pid);
  });

  it('keeps exact session counts across workers', async () => {
    const clients = Array.from({ length: 30 }, () => new Client(cluster.proxyUrl));
    await Promise.all(clients.map((client) => client.request('POST', '/api/counter')));
    await waitFor(() => cluster.lb.affinity.size >= 30);
    const state = (await (await fetch(`${cluster.adminUrl}/api/state`)).json()) as {
      nodes: Array<{ sessions: number }>;
      sessions: { total: number };
    };
    expect(state.sessions.total).toBe(30);
    expect(state.nodes.reduce((sum, node) => sum + node.sessions, 0)).toBe(30);
  });

  it('replaces a worker killed with -9 while the other keeps serving', async () => {
    const workers = cluster.lb.workers;
    if (workers === undefined) throw new Error('no workers');
    const [victim, survivor] = workers.pids as [number, number];
    const client = new Client(cluster.proxyUrl);
    await client.request('POST', '/api/counter');
    process.kill(victim, 'SIGKILL');
    // Connections the dead worker held die with it (fetch shares one pool across this test
    // file: let it see the resets). New connections land on the survivor or the replacement.
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (let i = 0; i < 20; i++) {
      const { status } = await new Client(cluster.proxyUrl).request('GET', '/health');
      expect(status).toBe(200);
    }
    await waitFor(() => workers.size === 2 && !workers.pids.includes(victim));
    expect(workers.pids).toContain(survivor);
    expect(workers.forks).toBe(3);
    const { json } = await client.request('POST', '/api/counter');
    expect(json.count).toBe(2);
  });
});
