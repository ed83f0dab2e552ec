import { Agent, createServer, type Server } from 'node:http';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NodeMetrics } from '../../src/admin/index.js';
import { NODE_METRICS_INTERVAL_MS, NODE_METRICS_STALE_MS } from '../../src/admin/node-metrics.js';
import { SECRET_HEADER } from '../../src/protocol.js';

const SECRET = 'node-metrics-test-secret';

let server: Server;
let agent: Agent;
let metrics: NodeMetrics;
const node = { id: 'node-1', url: '', isHealthy: true };

/** A node's `GET /_stickylb/metrics`: 7 writes waiting for the replica store. */
beforeEach(async () => {
  server = createServer((request, response) => {
    if (request.url !== '/_stickylb/metrics' || request.headers[SECRET_HEADER] !== SECRET) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({ store: {}, compartments: [], replication: { pending: 7, failedRequests: 0 } }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  node.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  node.isHealthy = true;
  agent = new Agent({ keepAlive: true });
  metrics = new NodeMetrics({ agent, secret: SECRET, nodes: () => [node] });
});

afterEach(async () => {
  vi.useRealTimers();
  agent.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function stopAnswering(): Promise<void> {
  agent.destroy();
  server.closeAllConnections();
  return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
}

describe('NodeMetrics', () => {
  it('keeps the report of a node that is up', async () => {
    await metrics.poll();
    expect(metrics.of('node-1')?.replication).toEqual({ pending: 7, failedRequests: 0 });
  });

  it('drops the report of a node that went down (its replication lag is gone with it)', async () => {
    await metrics.poll();
    node.isHealthy = false;
    await metrics.poll();
    expect(metrics.of('node-1')).toBeUndefined();
  });

  it('keeps a report through two missed polls, and drops it past 2.5 poll intervals', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const polledAt = Date.now();
    await metrics.poll();
    await stopAnswering();
    vi.setSystemTime(polledAt + NODE_METRICS_INTERVAL_MS);
    await metrics.poll();
    expect(metrics.of('node-1')?.replication?.pending).toBe(7);
    vi.setSystemTime(polledAt + 2 * NODE_METRICS_INTERVAL_MS);
    await metrics.poll();
    expect(metrics.of('node-1')?.replication?.pending).toBe(7);
    vi.setSystemTime(polledAt + NODE_METRICS_STALE_MS + 1);
    expect(metrics.of('node-1')).toBeUndefined();
  });
});
