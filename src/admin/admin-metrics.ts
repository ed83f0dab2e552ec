import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { AdminControl, AdminState } from './admin-control.js';
import { LATENCY_BOUNDS_MS, type NodeTraffic } from './node-traffic.js';

type Labels = Record<string, string>;
type Samples = Array<[Labels, number]>;

/** One scrape reads the state once, however many metrics it fills. */
const SNAPSHOT_TTL_MS = 250;

/**
 * `GET /metrics`: a prom-client Registry of this proxy's own (never the global one). Every
 * value is read lazily in `collect()` from counters the proxy keeps anyway, so the request
 * path never calls prom-client. `extra` adds gauges of the admin listener itself.
 */

/** A node row of /api/state with the node's own report (see NodeMetrics). */
type NodeWithStore = {
  store?: { replication?: { pending: number; failedRequests: number; restored?: number } };
};

export function createAdminMetrics(control: AdminControl, extra: { sseClients: () => number }): AdminMetrics {
  const registry = new Registry();
  let cached: AdminState | undefined;
  let cachedAt = -Infinity;
  const state = (): AdminState => {
    const now = performance.now();
    if (cached === undefined || now - cachedAt > SNAPSHOT_TTL_MS) {
      cached = control.state();
      cachedAt = now;
    }
    return cached;
  };
  const perNode = (value: (node: AdminState['nodes'][number]) => number): Samples =>
    state().nodes.map((node) => [{ node: node.id }, value(node)]);
  const gauge = (name: string, help: string, labelNames: string[], read: () => Samples): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.set(labels, value);
      },
    });
  };
  const counter = (name: string, help: string, labelNames: string[], read: () => Samples): void => {
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels, value);
      },
    });
  };
  // Label-less metrics: one sample each.
  const gaugeOf = (name: string, help: string, read: () => number): void =>
    gauge(name, help, [], () => [[{}, read()]]);
  const counterOf = (name: string, help: string, read: () => number): void =>
    counter(name, help, [], () => [[{}, read()]]);

  // Nodes.
  gauge('stickylb_node_sessions', 'Live sessions whose primary is the node', ['node'], () =>
    perNode((node) => node.sessions),
  );
  // Absent until the replica store has been counted once.
  gauge('stickylb_node_replicas', 'Replicas the node owns in the replica store', ['node'], () =>
    state().nodes.flatMap((node): Samples =>
      node.replicas === null ? [] : [[{ node: node.id }, node.replicas]],
    ),
  );
  gauge('stickylb_node_in_flight', 'Requests in flight to the node', ['node'], () =>
    perNode((node) => node.inFlight),
  );
  gauge(
    'stickylb_node_replication_pending',
    'Session writes queued on the node, not yet in the replica store (replication lag)',
    ['node'],
    () => perNode((node) => (node as NodeWithStore).store?.replication?.pending ?? 0),
  );
  counter(
    'stickylb_node_replication_failed_requests_total',
    'Replication requests from the node that failed',
    ['node'],
    () => perNode((node) => (node as NodeWithStore).store?.replication?.failedRequests ?? 0),
  );
  counter(
    'stickylb_node_sessions_restored_total',
    'Sessions the node restored from the replica store after losing them (restarted before health checks noticed)',
    ['node'],
    () => perNode((node) => (node as NodeWithStore).store?.replication?.restored ?? 0),
  );
  gauge('stickylb_node_weight', 'Balancing weight of the node', ['node'], () =>
    perNode((node) => node.weight),
  );
  gauge('stickylb_node_up', '1 when health checks pass for the node, else 0', ['node'], () =>
    perNode((node) => (node.healthy ? 1 : 0)),
  );
  gauge(
    'stickylb_node_state',
    'The node state (up, down, draining): 1 for the current one',
    ['node', 'state'],
    () =>
      state().nodes.flatMap((node) =>
        (['up', 'down', 'draining'] as const).map((s): [Labels, number] => [
          { node: node.id, state: s },
          node.state === s ? 1 : 0,
        ]),
      ),
  );
  counter(
    'stickylb_requests_total',
    'Requests answered through the proxy, by node and status class',
    ['node', 'status_class'],
    () =>
      state().nodes.flatMap((node) =>
        Object.entries(node.responses).map(([statusClass, n]): [Labels, number] => [
          { node: node.id, status_class: statusClass },
          n,
        ]),
      ),
  );
  registry.registerMetric(
    new LatencyHistogramMetric(control.traffic, () =>
      state().nodes.map((node) => node.id),
    ) as unknown as Metric,
  );

  // Sessions and the affinity table.
  const affinity = (key: keyof AdminState['affinity']) => () => state().affinity[key];
  gaugeOf('stickylb_sessions', 'Live sessions in the affinity table', () => state().sessions.total);
  gauge('stickylb_affinity_sessions', 'Affinity table sessions by state', ['state'], () => [
    [{ state: 'active' }, state().affinity.active],
    [{ state: 'idle' }, state().affinity.idle],
  ]);
  counterOf(
    'stickylb_affinity_untracked_total',
    'Sessions the full affinity table could not record',
    () => state().sessions.untracked,
  );
  counterOf('stickylb_affinity_sweeps_total', 'Sweeps of the affinity table', affinity('sweepRuns'));
  counterOf(
    'stickylb_affinity_expired_total',
    'Sessions expired from the affinity table',
    affinity('expiredTotal'),
  );
  counterOf(
    'stickylb_affinity_evicted_total',
    'Sessions evicted from the full affinity table',
    affinity('evictedTotal'),
  );
  gaugeOf(
    'stickylb_affinity_sweep_longest_pause_seconds',
    'Longest event-loop pause of one affinity sweep slice',
    () => state().affinity.longestSweepSliceMs / 1000,
  );
  gaugeOf(
    'stickylb_affinity_last_sweep_seconds',
    'Busy time of the latest affinity sweep',
    () => state().affinity.lastSweepMs / 1000,
  );
  gaugeOf(
    'stickylb_affinity_bytes_per_session',
    'Estimated heap bytes per affinity table entry',
    affinity('bytesPerSession'),
  );

  // Failover.
  // Distributed mode only. Labelled by URL so that, with the memory store, there is no sample
  // at all (a label-less gauge always shows one, 0, which would read as "Redis down").
  gauge('stickylb_redis_up', 'Whether Redis (shared affinity and replicas) is reachable', ['url'], () => {
    const redis = state().redis as { state: string; url: string } | undefined;
    return redis === undefined ? [] : [[{ url: redis.url }, redis.state === 'up' ? 1 : 0]];
  });
  counterOf(
    'stickylb_failovers_total',
    'Nodes failed over (marked down with their sessions moved)',
    () => state().failover.failovers,
  );
  counter('stickylb_moved_sessions_total', 'Sessions moved off a node, by outcome', ['outcome'], () => [
    [{ outcome: 'moved' }, state().failover.moved],
    [{ outcome: 'lost' }, state().failover.lost],
    [{ outcome: 'failed' }, state().failover.failed],
  ]);

  // Replication (the replica store in this proxy).
  const replication = (key: keyof AdminState['replication']) => () => state().replication[key];
  gaugeOf('stickylb_replicas', 'Replicas in the replica store', () => state().replication.records);
  counterOf(
    'stickylb_replication_write_batches_total',
    'Replication write batches received',
    replication('writeCalls'),
  );
  counterOf('stickylb_replication_writes_total', 'Replica records written', () => state().replication.writes);
  counter('stickylb_replication_rejected_total', 'Replica writes refused, by reason', ['reason'], () => [
    [{ reason: 'stale' }, state().replication.staleRejected],
    [{ reason: 'not_owner' }, state().replication.notOwnerRejected],
  ]);
  counterOf(
    'stickylb_replication_transfers_total',
    'Replicas whose owner a failover changed',
    replication('transfers'),
  );
  counterOf('stickylb_replication_expired_total', 'Replicas expired or evicted', replication('expired'));

  // Proxy.
  const proxy = (key: keyof AdminState['proxy']) => () => state().proxy[key];
  counterOf('stickylb_proxy_requests_total', 'Requests and upgrades the proxy received', proxy('requests'));
  counter(
    'stickylb_proxy_errors_total',
    'Requests the proxy answered with an error, by code',
    ['code'],
    () => [
      [{ code: 'SLB_UPSTREAM_FAILED' }, proxy('upstreamErrors')()],
      [{ code: 'SLB_UPSTREAM_TIMEOUT' }, proxy('upstreamTimeouts')()],
      [{ code: 'SLB_NO_HEALTHY_NODE' }, proxy('noHealthyNode')()],
      // Malformed, too large or too slow requests (SLB_BAD_REQUEST, SLB_HEADERS_TOO_LARGE, SLB_REQUEST_TIMEOUT).
      [{ code: 'client_error' }, proxy('clientErrors')()],
    ],
  );
  counterOf(
    'stickylb_proxy_fast_path_requests_total',
    'Requests whose answer the fast path (raw sockets) relayed; the rest took the full path',
    proxy('fastPathRequests'),
  );
  counterOf('stickylb_proxy_retries_total', 'Requests replayed on another node', proxy('retries'));
  counterOf(
    'stickylb_proxy_truncated_responses_total',
    'Responses cut off because the node ended its connection before their body (client connection closed too)',
    proxy('truncatedResponses'),
  );
  counterOf(
    'stickylb_proxy_client_aborts_total',
    'Responses the client left before they finished, or that were cut because it took nothing of them for proxy.timeouts.upstream',
    proxy('clientAborts'),
  );
  counterOf(
    'stickylb_proxy_refused_connections_total',
    'Client connections closed unserved because proxy.maxConnections were open',
    proxy('refusedConnections'),
  );
  counterOf(
    'stickylb_proxy_rejected_ids_total',
    'Session ids that failed verification',
    proxy('rejectedIds'),
  );

  // Admin listener.
  gaugeOf('stickylb_admin_sse_clients', 'Dashboards connected to the event stream', extra.sseClients);

  return {
    contentType: registry.contentType,
    async render(): Promise<string> {
      return `${await registry.metrics()}\n${await processRegistry().metrics()}`;
    },
  };
}

/** The `/metrics` text of one admin listener. */
export interface AdminMetrics {
  contentType: string;
  render(): Promise<string>;
}

let sharedProcessRegistry: Registry | undefined;

/**
 * prom-client's default metrics (event-loop lag, GC, heap, CPU) describe the process, not one
 * proxy, and start observers that live as long as the process: one registry per process.
 */
function processRegistry(): Registry {
  if (sharedProcessRegistry === undefined) {
    sharedProcessRegistry = new Registry();
    collectDefaultMetrics({ register: sharedProcessRegistry });
    // prom-client reports `external` (which includes them) but not ArrayBuffers alone: Buffers
    // kept by sockets and parsers are the first suspect when RSS grows under a flat heap.
    new Gauge({
      name: 'stickylb_array_buffers_bytes',
      help: 'Bytes of ArrayBuffers and Buffers of this process (process.memoryUsage().arrayBuffers)',
      registers: [sharedProcessRegistry],
      collect() {
        this.set(process.memoryUsage().arrayBuffers);
      },
    });
  }
  return sharedProcessRegistry;
}

/**
 * `stickylb_request_duration_seconds`, a Prometheus histogram built from NodeTraffic's fixed
 * buckets at scrape time. prom-client's Histogram only takes one observation at a time, which
 * the request path must not pay for; a registry accepts any object with this shape.
 */
class LatencyHistogramMetric {
  readonly name = 'stickylb_request_duration_seconds';
  readonly help = 'Time from request received to response finished, by node';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #traffic: NodeTraffic;
  readonly #nodeIds: () => string[];

  constructor(traffic: NodeTraffic, nodeIds: () => string[]) {
    this.#traffic = traffic;
    this.#nodeIds = nodeIds;
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: Array<{ metricName: string; labels: Labels; value: number }>;
  }> {
    const values: Array<{ metricName: string; labels: Labels; value: number }> = [];
    for (const node of this.#nodeIds()) {
      const histogram = this.#traffic.histogram(node);
      let cumulative = 0;
      LATENCY_BOUNDS_MS.forEach((boundMs, bucket) => {
        cumulative += histogram.counts[bucket] ?? 0;
        const le = boundMs === Infinity ? '+Inf' : String(boundMs / 1000);
        values.push({ metricName: `${this.name}_bucket`, labels: { node, le }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_sum`, labels: { node }, value: histogram.sumMs / 1000 });
      values.push({ metricName: `${this.name}_count`, labels: { node }, value: histogram.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
