import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type ConfigInput } from '../../src/config/index.js';
import { createSilentLogger } from '../../src/log.js';
import { StickyLb } from '../../src/stickylb.js';
import { waitFor } from '../integration/harness.js';
import { rawExchange } from './raw-client.js';
import { startRecordingNodes, type RecordingNode } from './recording-node.js';

/** An in-process proxy (data plane in this process, so its server is inspectable) over recording nodes. */
export interface HardeningProxy {
  lb: StickyLb;
  nodes: RecordingNode[];
  port: number;
  url: string;
  adminUrl: string;
  /** Client connections the proxy holds open right now. */
  connections(): Promise<number>;
  /** Requests forwarded to a node and not finished yet, over all nodes. */
  inFlight(): number;
  /** The admin's Prometheus text. */
  metrics(): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts `nodeCount` recording nodes and a proxy in front of them with `proxy` settings
 * merged in (small timeouts, limits), and waits until health checks see every node up.
 */
export async function startHardeningProxy(
  options: { nodeCount?: number; proxy?: ConfigInput['proxy']; nodeUrls?: string[] } = {},
): Promise<HardeningProxy> {
  const nodes = options.nodeUrls === undefined ? await startRecordingNodes(options.nodeCount ?? 1) : [];
  const urls = options.nodeUrls ?? nodes.map((node) => node.url);
  const dir = mkdtempSync(join(tmpdir(), 'stickylb-hardening-'));
  const lb = new StickyLb(
    parseConfig({
      proxy: { ...options.proxy, workers: 1, listen: { host: '127.0.0.1', port: 0 } },
      admin: { listen: { host: '127.0.0.1', port: 0 } },
      session: { secretFile: join(dir, 'secret') },
      replication: { listen: { host: '127.0.0.1', port: 0 }, secretFile: join(dir, 'replication-secret') },
      // Lenient: a loaded 2-core box must not time out a probe of a live node (fall 3 × 500 ms).
      health: { interval: '500ms', timeout: '400ms', rise: 1, fall: 3 },
      log: { level: 'silent' },
      nodes: urls.map((url, index) => ({ id: `node-${index + 1}`, url })),
    }),
    createSilentLogger(),
  );
  await lb.listen();
  const close = async (): Promise<void> => {
    await lb.close(500);
    await Promise.all(nodes.map((node) => node.close()));
  };
  if (options.nodeUrls === undefined) {
    try {
      await waitFor(() => lb.registry.all.every((node) => node.isHealthy));
    } catch (error) {
      await close();
      throw error;
    }
  }
  const port = lb.proxyAddress?.port as number;
  const adminUrl = `http://127.0.0.1:${lb.adminAddress?.port}`;
  return {
    lb,
    nodes,
    port,
    url: `http://127.0.0.1:${port}`,
    adminUrl,
    connections: () =>
      new Promise((resolve, reject) =>
        lb.proxy.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
      ),
    inFlight: () => lb.registry.all.reduce((sum, node) => sum + node.inFlight, 0),
    metrics: async () => (await fetch(`${adminUrl}/metrics`)).text(),
    close,
  };
}

/**
 * Whether the proxy still serves a normal client: a plain GET on its own connection (closed
 * after, so it leaves nothing open) answered 200 by a node.
 */
export async function isServing(proxy: HardeningProxy): Promise<boolean> {
  const { response } = await rawExchange(
    proxy.port,
    'GET /served-after HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n',
  );
  return response?.status === 200;
}
