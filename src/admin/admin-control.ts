import type { MoveReport } from '../failover/index.js';
import type { HealthCheckResult } from '../health/index.js';
import type { ProxyCounters } from '../proxy/proxy-counters.js';
import type { ReplicaStoreStats } from '../replication/index.js';
import type { StoreMetrics } from '../session/index.js';
import type { EventLog, LoggedEvent } from './event-log.js';
import type { NodeTraffic, TrafficSummary } from './node-traffic.js';
import type { TestSessionsReport } from './test-sessions.js';

/** What the admin listener reads and acts on; the StickyLb instance provides it. */
export interface AdminControl {
  state(): AdminState;
  /** Brings figures counted in the background (replicas per node) up to date before a one-off `state()`. */
  refreshState(): Promise<void>;
  /** Sessions per node, cheaply (the timeline samples it every few seconds). */
  sessionCounts(): Array<{ id: string; sessions: number }>;
  /** Control-plane events: the dashboard's log and the SSE stream. */
  readonly events: EventLog;
  /** Per-node rate and latency, fed by the proxy. */
  readonly traffic: NodeTraffic;
  drain(nodeId: string): boolean;
  undrain(nodeId: string): boolean;
  evacuate(nodeId: string): Promise<MoveReport>;
  rebalance(): Promise<MoveReport>;
  hasNode(nodeId: string): boolean;
  /** Creates `count` real sessions through the proxy listener (dashboard load button). */
  createTestSessions(count: number): Promise<TestSessionsReport>;
  /** Sweeps expired sessions out of the affinity table now. */
  sweep(): Promise<SweepReport>;
}

/** One node in `GET /api/state` (contract: id, url, state, sessions). */
export interface AdminNodeState extends TrafficSummary {
  id: string;
  url: string;
  state: 'up' | 'down' | 'draining';
  /** Live sessions whose primary is this node (affinity table). */
  sessions: number;
  /** Sessions on their way here: a failover, evacuate or rebalance is installing them (not yet in `sessions`). */
  incoming: number;
  /**
   * Replicas this node owns in the replica store: counted every few seconds, not live; null
   * until a count has succeeded (the replica store not reachable yet).
   */
  replicas: number | null;
  weight: number;
  healthy: boolean;
  draining: boolean;
  inFlight: number;
  /** Requests answered since start. */
  requests: number;
  /** The latest active health check, if one ran. */
  lastCheck: HealthCheckResult | undefined;
}

/** `GET /api/state` (contract: nodes[].id/url/state/sessions, sessions.total; the rest is extra). */
export interface AdminState {
  nodes: AdminNodeState[];
  sessions: {
    total: number;
    /** Sessions the affinity table could not record (it was full). */
    untracked: number;
  };
  /** Sums over the nodes (filled in by the admin listener). */
  totals?: {
    replicas: number;
    inFlight: number;
    requests: number;
    requestsPerSec: number;
  };
  proxy: ProxyCounters & { rejectedIds: number };
  failover: { failovers: number; moved: number; lost: number; failed: number };
  replication: ReplicaStoreStats;
  /** The affinity table's own store metrics (active/idle, sweeps, pauses, bytes per session). */
  affinity: StoreMetrics;
  events: LoggedEvent[];
  /** Id of the latest event, so a stream client can tell it missed one. */
  lastEventId: number;
  /**
   * The event log's run (EventLog.bootId, filled in by the admin listener): event ids restart
   * at 1 with each run, so a client that sees it change forgets the ids it has.
   */
  bootId?: string;
  /** When this snapshot was taken (ms since the epoch). */
  at: number;
  [extra: string]: unknown;
}

/** `POST /api/sweep`. */
export interface SweepReport {
  affinity: { expired: number; durationMs: number; sessions: number };
}
