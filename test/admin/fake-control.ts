import { vi } from 'vitest';
import { EventLog, NodeTraffic, type AdminControl, type AdminState } from '../../src/admin/index.js';
import type { MoveReport } from '../../src/failover/index.js';

/** An AdminControl without a cluster: nodes are plain objects, actions are spies. */
export class FakeControl implements AdminControl {
  readonly events = new EventLog();
  readonly traffic = new NodeTraffic();
  readonly nodes = [
    { id: 'node-1', sessions: 3, isDraining: false, isHealthy: true },
    { id: 'node-2', sessions: 2, isDraining: false, isHealthy: true },
  ];
  readonly drain = vi.fn((id: string) => this.#setDraining(id, true));
  readonly undrain = vi.fn((id: string) => this.#setDraining(id, false));
  readonly evacuate = vi.fn(async (id: string) => report(id, 'evacuate'));
  readonly rebalance = vi.fn(async () => report('*', 'rebalance'));
  readonly createTestSessions = vi.fn(async (count: number) => ({
    requested: count,
    created: count,
    failed: 0,
    durationMs: 1,
  }));
  /** Set: the distributed mode's `redis` field of /api/state. */
  redis: { state: 'up' | 'down'; url: string } | undefined;
  readonly sweep = vi.fn(async () => ({ affinity: { expired: 0, durationMs: 0, sessions: 5 } }));

  hasNode(id: string): boolean {
    return this.nodes.some((node) => node.id === id);
  }

  async refreshState(): Promise<void> {}

  sessionCounts(): Array<{ id: string; sessions: number }> {
    return this.nodes.map(({ id, sessions }) => ({ id, sessions }));
  }

  state(): AdminState {
    return {
      nodes: this.nodes.map((node) => ({
        id: node.id,
        url: `http://127.0.0.1/${node.id}`,
        state: !node.isHealthy ? 'down' : node.isDraining ? 'draining' : 'up',
        sessions: node.sessions,
        incoming: 0,
        replicas: node.sessions,
        weight: 1,
        healthy: node.isHealthy,
        draining: node.isDraining,
        inFlight: 0,
        requests: 7,
        lastCheck: undefined,
        ...this.traffic.summary(node.id),
      })),
      sessions: { total: this.nodes.reduce((sum, node) => sum + node.sessions, 0), untracked: 0 },
      proxy: {
        requests: 14,
        upstreamErrors: 1,
        upstreamTimeouts: 2,
        clientAborts: 0,
        noHealthyNode: 3,
        clientErrors: 4,
        retries: 0,
        refusedConnections: 0,
        truncatedResponses: 0,
        fastPathRequests: 12,
        rejectedIds: 0,
      },
      failover: { failovers: 1, moved: 41, lost: 0, failed: 0 },
      replication: {
        records: 5,
        writeCalls: 5,
        writes: 9,
        staleRejected: 1,
        notOwnerRejected: 2,
        touchCalls: 0,
        touches: 0,
        removes: 0,
        transfers: 0,
        expired: 0,
      },
      affinity: {
        total: 5,
        active: 4,
        idle: 1,
        expiredPerSec: 0,
        evictedPerSec: 0,
        expiredTotal: 6,
        evictedTotal: 0,
        sweepRuns: 12,
        longestSweepSliceMs: 1.5,
        longestSweepSliceCpuMs: 1.2,
        lastSweepMs: 0.2,
        bytesPerSession: 200,
      },
      events: this.events.recent(50),
      lastEventId: this.events.lastId,
      at: Date.now(),
      ...(this.redis === undefined ? {} : { redis: this.redis }),
    };
  }

  #setDraining(id: string, isDraining: boolean): boolean {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (node === undefined || node.isDraining === isDraining) return false;
    node.isDraining = isDraining;
    return true;
  }
}

function report(nodeId: string, reason: MoveReport['reason']): MoveReport {
  return { nodeId, reason, moved: 0, lost: 0, failed: 0, targets: {}, startedAt: Date.now(), durationMs: 0 };
}
