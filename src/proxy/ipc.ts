import type { Config } from '../config/index.js';
import type { TrafficSnapshot } from '../admin/node-traffic.js';
import type { FailureEvidence } from '../health/index.js';
import type { ProxyCounters } from './proxy-counters.js';

/*
 * Messages between the control plane (cluster primary) and the proxy workers. Workers never
 * wait on the primary to route a healthy session: node state and moved sessions are pushed
 * to them; what they learn (sessions used, node failures, counters) goes up in batches. The
 * request/response pairs are on rare paths: `move` (a session whose node is down) and `replay`
 * (may a failed request be sent again?), which first flushes every worker's `used` batch.
 */

/** A node's state as the primary pushes it to workers. */
export interface NodeSnapshot {
  id: string;
  isHealthy: boolean;
  isDraining: boolean;
  sessions: number;
  /** Sessions a move is installing on the node (ProxyNode.incoming). */
  incoming: number;
}

export type PrimaryMessage =
  | {
      t: 'init';
      config: Config;
      sessionSecret: string;
      moved: Array<[string, string]>;
      nodes: NodeSnapshot[];
    }
  | { t: 'nodes'; nodes: NodeSnapshot[] }
  | { t: 'moved'; entries: Array<[string, string | null]> }
  | { t: 'move-reply'; id: number; nodeId?: string; error?: { code: string; message: string } }
  | { t: 'replay-reply'; id: number; isSafe: boolean }
  /** Send your batch of `used` reports now, then answer `used-flushed` (a barrier before a replay check). */
  | { t: 'flush-used'; id: number }
  | { t: 'reload'; config: Config }
  | { t: 'shutdown'; graceMs: number };

/** Per-node counters a worker reports: [inFlight, requests answered]. */
export type NodeCounters = Record<string, [number, number]>;

export type WorkerMessage =
  | { t: 'ready' }
  | { t: 'listening'; port: number }
  | { t: 'used'; entries: Array<string | number> /* key, nodeId, version, key, nodeId, version, … */ }
  | { t: 'replay'; id: number; key: string }
  | { t: 'used-flushed'; id: number }
  | { t: 'failure'; nodeId: string; reason: string; evidence: FailureEvidence }
  | { t: 'move'; id: number; key: string; from: string }
  | {
      t: 'stats';
      counters: ProxyCounters & { rejectedIds: number };
      nodes: NodeCounters;
      traffic: TrafficSnapshot;
    };

/** How often workers send their counters, and flush batched `used` reports at the latest. */
export const STATS_INTERVAL_MS = 250;
export const USED_FLUSH_MS = 20;
/** A `used` batch is sent early once it holds this many sessions. */
export const USED_BATCH_MAX = 1000;
/** How long a replay check waits for the other workers' `used` batches (a dying worker never answers). */
export const USED_BARRIER_TIMEOUT_MS = 250;
