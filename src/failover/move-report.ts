/** Why sessions are being moved. */
export type MoveReason = 'down' | 'evacuate' | 'rebalance' | 'request';

/** What one move of many sessions did (a failover, an evacuation, a rebalance). */
export interface MoveReport {
  nodeId: string;
  reason: MoveReason;
  /** Sessions moved with their state. */
  moved: number;
  /** Sessions moved without state: the replica store had none (never replicated, or expired). */
  lost: number;
  /** Sessions that could not be moved (no target could take them). */
  failed: number;
  /** Sessions each target received. */
  targets: Record<string, number>;
  /** Why sessions failed when the replica store did (a Redis outage): nothing can move without it. */
  storeError?: string;
  startedAt: number;
  durationMs: number;
}

/** A report of nothing moved yet, started now. */
export function emptyReport(nodeId: string, reason: MoveReason): MoveReport {
  return { nodeId, reason, moved: 0, lost: 0, failed: 0, targets: {}, startedAt: Date.now(), durationMs: 0 };
}

/** Adds `part` (one batch, one source node) into `into`. */
export function mergeReport(into: MoveReport, part: MoveReport): void {
  into.moved += part.moved;
  into.lost += part.lost;
  into.failed += part.failed;
  into.storeError ??= part.storeError;
  for (const [node, count] of Object.entries(part.targets))
    into.targets[node] = (into.targets[node] ?? 0) + count;
}
