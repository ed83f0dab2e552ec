import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { parseConfig, type ConfigInput } from '../../src/config/index.js';
import { createSilentLogger } from '../../src/log.js';
import type { ProxyCounters } from '../../src/proxy/proxy-counters.js';
import { StickyLb } from '../../src/stickylb.js';
import { waitFor } from '../integration/harness.js';
import { FaultNode } from './fault-node.js';

/** An in-process stickylb (one worker) in front of FaultNodes (one unless asked for more). */
export interface FaultCluster {
  lb: StickyLb;
  /** The first node (most tests have only one). */
  node: FaultNode;
  nodes: FaultNode[];
  proxyPort: number;
  proxyUrl: string;
  adminUrl: string;
  /** The proxy's counters, as /api/state reports them. */
  counters(): Promise<ProxyCounters>;
  close(): Promise<void>;
}

export async function startFaultCluster(
  proxy: ConfigInput['proxy'] = {},
  nodeCount = 1,
): Promise<FaultCluster> {
  const nodes = await Promise.all(Array.from({ length: nodeCount }, () => FaultNode.start()));
  const node = nodes[0] as FaultNode;
  const input: ConfigInput = {
    proxy: { workers: 1, ...proxy, listen: { host: '127.0.0.1', port: 0 } },
    admin: { listen: { host: '127.0.0.1', port: 0 } },
    session: { secret: randomBytes(24).toString('base64url') },
    replication: { listen: { host: '127.0.0.1', port: 0 }, secret: randomBytes(24).toString('base64url') },
    health: { interval: '500ms', timeout: '400ms' },
    log: { level: 'silent' },
    nodes: nodes.map((each, index) => ({ id: `node-${index + 1}`, url: each.url })),
  };
  const lb = new StickyLb(parseConfig(input), createSilentLogger());
  await lb.listen();
  await waitFor(() => lb.registry.all.every((n) => n.isHealthy));
  const proxyPort = lb.proxyAddress?.port as number;
  const adminUrl = `http://127.0.0.1:${lb.adminAddress?.port}`;
  return {
    lb,
    node,
    nodes,
    proxyPort,
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    adminUrl,
    async counters() {
      const state = (await (await fetch(`${adminUrl}/api/state`)).json()) as {
        proxy: ProxyCounters;
      };
      return state.proxy;
    },
    async close() {
      await lb.close(200);
      await Promise.all(nodes.map((each) => each.close()));
    },
  };
}

/** What a client saw of one response: status, body bytes, and whether it ended cleanly. */
export interface ClientView {
  status: number | undefined;
  body: string;
  /** The response ended with its framing complete ('end' after a full body). */
  isComplete: boolean;
  /** The connection was cut (error or close before the end). */
  isCut: boolean;
}

/**
 * One request on its own connection (agent: false), waiting until the response completes or
 * the connection is cut. Bounded by `limitMs`: a hang rejects, never passes.
 */
export function clientRequest(
  port: number,
  options: { method?: string; path?: string; body?: string; headers?: Record<string, string> } = {},
  limitMs = 10_000,
): Promise<ClientView> {
  return new Promise((resolve, reject) => {
    const view: ClientView = { status: undefined, body: '', isComplete: false, isCut: false };
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(view);
    };
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path ?? '/api/counter',
        agent: false,
        headers: {
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...options.headers,
        },
      },
      (res) => {
        view.status = res.statusCode;
        res.on('data', (chunk: Buffer) => (view.body += chunk.toString()));
        res.on('end', () => {
          view.isComplete = res.complete;
          settle();
        });
        res.on('error', () => {
          view.isCut = true;
          settle();
        });
        res.on('close', () => {
          if (!res.complete) view.isCut = true;
          settle();
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no complete answer or cut within ${limitMs} ms: ${JSON.stringify(view)}`));
    }, limitMs);
    req.on('error', () => {
      view.isCut = true;
      settle();
    });
    req.end(options.body);
  });
}
