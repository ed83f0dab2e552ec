import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createSilentLogger } from '../../src/log.js';
import { StickyLb } from '../../src/stickylb.js';
import { Client, startCluster, type Cluster } from './harness.js';

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster({ nodeCount: 3 });
});
afterAll(async () => {
  await cluster?.close();
});

describe('proxy restart', () => {
  it('keeps every session on its node with its state', async () => {
    const clients = Array.from({ length: 12 }, () => new Client(cluster.proxyUrl));
    const homes = new Map<Client, string>();
    for (const client of clients) {
      await client.request('POST', '/api/counter');
      homes.set(client, (await client.request('POST', '/api/counter')).json.node);
    }
    const config = cluster.lb.config;
    await cluster.lb.close(1000);
    // Let this test's fetch pool see the old proxy's FINs; a browser would retry on a stale
    // keep-alive socket, undici's fetch does not.
    await new Promise((resolve) => setTimeout(resolve, 200));

    // Same config (and so the same id secret), new process state: nothing in the affinity table.
    const port = cluster.lb.proxyAddress?.port as number;
    const lb = new StickyLb(
      parseConfig({ ...config, proxy: { ...config.proxy, listen: { host: '127.0.0.1', port } } }),
      createSilentLogger(),
    );
    await lb.listen();
    cluster.lb = lb;
    for (const client of clients) {
      const { json } = await client.request('POST', '/api/counter');
      expect(json.node).toBe(homes.get(client));
      expect(json.count).toBe(3);
    }
  });
});
