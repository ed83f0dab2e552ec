import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createSilentLogger } from '../../src/log.js';
import { StickyLb } from '../../src/stickylb.js';
import { Client, startCluster, waitFor, type Cluster } from './harness.js';

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster({ nodeCount: 3 });
});
afterAll(async () => {
  await cluster?.close();
});

/** Replaces the cluster's proxy with a fresh one on the same ports (same config, empty memory). */
async function restartProxy(): Promise<StickyLb> {
  const config = cluster.lb.config;
  const port = cluster.lb.proxyAddress?.port as number;
  await cluster.lb.close(1000);
  // Let this test's fetch pool see the old proxy's FINs; a browser would retry on a stale
  // keep-alive socket, undici's fetch does not.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const lb = new StickyLb(
    parseConfig({ ...config, proxy: { ...config.proxy, listen: { host: '127.0.0.1', port } } }),
    createSilentLogger(),
  );
  await lb.listen();
  cluster.lb = lb;
  return lb;
}

describe('proxy restart', () => {
  it('keeps every session on its node with its state', async () => {
    const clients = Array.from({ length: 12 }, () => new Client(cluster.proxyUrl));
    const homes = new Map<Client, string>();
    for (const client of clients) {
      await client.request('POST', '/api/counter');
      homes.set(client, (await client.request('POST', '/api/counter')).json.node);
    }
    // Same config (and so the same id secret), new process state: nothing in the affinity table.
    await restartProxy();
    for (const client of clients) {
      const { json } = await client.request('POST', '/api/counter');
      expect(json.node).toBe(homes.get(client));
      expect(json.count).toBe(3);
    }
  });

  it('has the nodes re-seed the empty replica store, so a later failover keeps every counter', async () => {
    const clients = Array.from({ length: 9 }, () => new Client(cluster.proxyUrl));
    const last = new Map<Client, { node: string; count: number }>();
    for (const client of clients) {
      await client.request('POST', '/api/counter');
      const { json } = await client.request('POST', '/api/counter');
      last.set(client, { node: json.node, count: json.count });
    }
    const oldEpoch = cluster.lb.replicas.epoch;
    const lb = await restartProxy();
    // A new, empty store (nodes may already be re-seeding it by now).
    expect(lb.replicas.epoch).not.toBe(oldEpoch);
    // No request touches these sessions: the nodes notice the new store (its epoch) and re-send them.
    const keys = clients.map((client) => (client.sessionId as string).split('.')[0] as string);
    await waitFor(
      async () => (await lb.replicas.readMany(keys)).every((record) => record !== undefined),
      15_000,
    );
    const victim = [...last.values()][0]?.node as string;
    await cluster.nodes.find((node) => node.id === victim)?.kill('SIGKILL');
    for (const [client, before] of last) {
      const { status, json } = await client.request('POST', '/api/counter');
      expect(status).toBe(200);
      expect(json.count).toBe(before.count + 1);
    }
  });
});
