import { request, type Agent } from 'node:http';
import { SECRET_HEADER } from '../protocol.js';
import type { ReplicatorStats } from '../replication/index.js';
import type { StoreMetrics } from '../session/index.js';

/** What a node reports about its session store (`GET /_stickylb/metrics` on the node). */
export interface NodeStoreReport {
  store: StoreMetrics;
  compartments: Array<{ path: string; bytes: number; sessions: number }>;
  /** The node's replicator: writes queued (the lag) and failed requests; absent on nodes without one. */
  replication?: ReplicatorStats;
  at: number;
}

/** How often the control plane asks each node. */
export const NODE_METRICS_INTERVAL_MS = 2000;

/**
 * A report older than this (two polls missed) is dropped: a node that stopped answering would
 * otherwise show its last replication lag forever, in /api/state and in
 * `stickylb_node_replication_pending`. One missed poll (a slow answer) keeps the figures.
 */
export const NODE_METRICS_STALE_MS = 2.5 * NODE_METRICS_INTERVAL_MS;

/**
 * Polls every node's session-store metrics (active/idle, sweeps, bytes per session, biggest
 * compartments) for the admin API and dashboard. One request per node every 2 s, over the
 * proxy's keep-alive agent, authenticated with the replication secret.
 */
export class NodeMetrics {
  readonly #latest = new Map<string, NodeStoreReport>();
  readonly #agent: Agent;
  readonly #secret: string;
  readonly #nodes: () => ReadonlyArray<{ id: string; url: string; isHealthy: boolean }>;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: {
    agent: Agent;
    secret: string;
    nodes: () => ReadonlyArray<{ id: string; url: string; isHealthy: boolean }>;
  }) {
    this.#agent = options.agent;
    this.#secret = options.secret;
    this.#nodes = options.nodes;
  }

  /** The last report of a node, if it answered one lately (see NODE_METRICS_STALE_MS). */
  of(nodeId: string): NodeStoreReport | undefined {
    const report = this.#latest.get(nodeId);
    if (report === undefined || Date.now() - report.at <= NODE_METRICS_STALE_MS) return report;
    this.#latest.delete(nodeId);
    return undefined;
  }

  start(): void {
    void this.poll();
    this.#timer = setInterval(() => void this.poll(), NODE_METRICS_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Asks every healthy node once. A down node's report is dropped (its figures describe a
   * process that is gone); one that does not answer keeps its last report until it is stale.
   */
  async poll(): Promise<void> {
    const nodes = this.#nodes();
    const healthy = new Set(nodes.filter((node) => node.isHealthy).map((node) => node.id));
    for (const id of this.#latest.keys()) if (!healthy.has(id)) this.#latest.delete(id);
    await Promise.all(
      nodes
        .filter((node) => node.isHealthy)
        .map(async (node) => {
          try {
            const report = (await this.#get(new URL('/_stickylb/metrics', node.url))) as Omit<
              NodeStoreReport,
              'at'
            >;
            this.#latest.set(node.id, { ...report, at: Date.now() });
          } catch {
            // Down or slow: health checks report that; the last numbers stand until stale.
          }
        }),
    );
  }

  #get(url: URL): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        { agent: this.#agent, headers: { [SECRET_HEADER]: this.#secret }, timeout: 1000 },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            if (res.statusCode !== 200) {
              reject(new Error(`HTTP ${res.statusCode}`));
              return;
            }
            try {
              resolve(JSON.parse(text));
            } catch (error) {
              reject(error as Error);
            }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  }
}
