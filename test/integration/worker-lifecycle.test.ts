import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { Client, NodeProcess, freePort, startCluster, waitFor, type Cluster } from './harness.js';

/*
 * The proxy workers over the control plane's life: config reloads and workers dying. Always
 * two workers, whatever STICKYLB_TEST_WORKERS says: this is about node:cluster itself.
 */
let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster({ nodeCount: 2, config: { proxy: { workers: 2 } } });
});
afterAll(async () => {
  await cluster?.close();
});

async function adminPost(path: string): Promise<number> {
  const response = await fetch(`${cluster.adminUrl}${path}`, { method: 'POST' });
  await response.arrayBuffer();
  return response.status;
}

describe('proxy workers across a reload', () => {
  it('send new sessions to a node added by reload, and none to a removed one', async () => {
    const input = parse(readFileSync(cluster.configFile, 'utf8'));
    const url = `http://127.0.0.1:${await freePort()}`;
    // node-1 removed, node-3 added.
    input.nodes = [input.nodes[1], { id: 'node-3', url }];
    writeFileSync(cluster.configFile, stringify(input));
    const added = new NodeProcess('node-3', url, cluster.configFile);
    cluster.nodes.push(added); // stopped by cluster.close()
    await added.ready();
    cluster.lb.reload(parseConfig(input));
    await waitFor(() => cluster.lb.registry.get('node-3')?.isHealthy, 20_000);
    // node-2 drained: node-3 is the only node new sessions may go to.
    expect(await adminPost('/api/nodes/node-2/drain')).toBe(200);

    // The drain reaches the workers over IPC: wait for its first effect, then every new session.
    await waitFor(
      async () => (await new Client(cluster.proxyUrl).request('POST', '/api/counter')).json.node === 'node-3',
    );
    const nodes = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const { status, json } = await new Client(cluster.proxyUrl).request('POST', '/api/counter');
        return `${status} ${json.node}`;
      }),
    );
    expect(nodes).toEqual(Array.from({ length: 10 }, () => '200 node-3'));
  });
});
