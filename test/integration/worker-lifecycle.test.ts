import nodeCluster from 'node:cluster';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
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

/** One request on a connection of its own (no keep-alive pool left holding a dead worker's socket). */
function requestOnce(path: string): Promise<number> {
  return new Promise((done, fail) => {
    const req = request(`${cluster.proxyUrl}${path}`, { method: 'POST', agent: false }, (response) => {
      response.resume();
      response.on('end', () => done(response.statusCode ?? 0));
    });
    req.on('error', fail);
    req.end();
  });
}

/** The counter series a worker's death must not lower: each series line → value, plus per-node requests. */
async function scrapeCounters(): Promise<Map<string, number>> {
  const text = await (await fetch(`${cluster.adminUrl}/metrics`)).text();
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (
      !/^(stickylb_proxy_\w+_total|stickylb_requests_total|stickylb_request_duration_seconds_(count|bucket))[{ ]/.test(
        line,
      )
    )
      continue;
    const space = line.lastIndexOf(' ');
    series.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  const state = (await (await fetch(`${cluster.adminUrl}/api/state`)).json()) as {
    nodes: Array<{ id: string; requests: number }>;
  };
  for (const node of state.nodes) series.set(`/api/state ${node.id} requests`, node.requests);
  return series;
}

describe('proxy workers dying', () => {
  it('never lower the counters in /metrics when killed with -9', async () => {
    const workers = cluster.lb.workers;
    if (workers === undefined) throw new Error('no workers');
    for (let i = 0; i < 20; i++) expect(await requestOnce('/api/counter')).toBe(200);
    // Workers report every STATS_INTERVAL_MS: wait until every request is counted.
    const before = await waitFor(async () => {
      const counters = await scrapeCounters();
      return (counters.get('stickylb_proxy_requests_total') ?? 0) >= 20 ? counters : undefined;
    });
    // Both workers, one after the other: whichever served the requests, it dies.
    // Each replacement listens before the next kill: node:cluster closes the shared socket when
    // no worker holds it, and a port-0 listener would then come back on another port.
    for (const victim of workers.pids) {
      const replaced = once(nodeCluster, 'listening');
      process.kill(victim, 'SIGKILL');
      await replaced;
      expect(workers.pids).not.toContain(victim);
    }
    const after = await scrapeCounters();
    const lowered = [...before]
      .filter(([name, value]) => (after.get(name) ?? 0) < value)
      .map(([name, value]) => `${name}: ${value} -> ${after.get(name) ?? 'gone'}`);
    expect(lowered).toEqual([]);
    expect(before.size).toBeGreaterThan(2);
  });
});

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
    // The first effect may be seen by one worker only, but the drain went to every worker before
    // the requests below connect, and node:cluster hands a worker its connections on the same
    // IPC channel as the drain, after it: so each worker has the drain when it serves them.
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
