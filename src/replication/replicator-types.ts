import type { Agent } from 'node:http';
import type { Logger } from '../log.js';
import type { CompartmentData, JsonValue } from '../session/index.js';
import type { ReplicaTransport } from './replica-transport.js';

/** A session as a node replicates it. */
export interface ReplicatedSession {
  key: string;
  version: number;
  data: JsonValue | CompartmentData;
  lastAccessAt: number;
}

/** Options of a Replicator; durations in milliseconds. */
export type ReplicatorOptions = ReplicatorBaseOptions & (HttpReplicatorOptions | TransportReplicatorOptions);

/** `memory` store: the Replicator sends to the proxy's replication server over HTTP. */
export interface HttpReplicatorOptions {
  /** Base URL of the replication server, `http://host:port`. */
  endpoint: string;
  /** `replication.secret`. */
  secret: string;
  /** Time one request to the replica store may take. Default 5000. */
  timeoutMs?: number;
  /** Keep-alive agent; omitted: a private one. */
  agent?: Agent;
}

/** Any store through a given transport (e.g. straight to Redis); the caller closes what it opened. */
export interface TransportReplicatorOptions {
  transport: ReplicaTransport;
}

/** Options of every Replicator, whatever its transport. */
export interface ReplicatorBaseOptions {
  /** This node's id (`nodes[].id`): the owner of what it writes. */
  nodeId: string;
  /** `sync`: `write` resolves once the store acknowledged; `async`: queued, flushed in batches. */
  mode: 'sync' | 'async';
  /** `async` mode: how often the queue is flushed (`replication.flushInterval`). */
  flushIntervalMs: number;
  /** How often touched keys are sent (with none, the epoch is checked instead). Default 1000. */
  touchIntervalMs?: number;
  logger: Logger;
  /** The store's epoch changed (the proxy restarted, its memory store is empty): call `seed`. A rejection is retried on each touch tick while the epoch stays. */
  onEpochChange?: (epoch: string) => void | Promise<void>;
  /** Another node owns this session now (a failover moved it): drop the local copy. Both modes. */
  onSessionMoved?: (key: string) => void;
}

/** What `seed` did. */
export interface SeedResult {
  written: number;
  stale: number;
  moved: number;
  /** Sessions that cannot be replicated (malformed, or larger than a request may be). */
  skipped: number;
}

/** Counters of a Replicator since it was created. */
export interface ReplicatorStats {
  writeRequests: number;
  recordsSent: number;
  touchRequests: number;
  removeRequests: number;
  /** Replicas asked for by `read` (a session missing here that the proxy did not mint just now). */
  readRequests: number;
  failedRequests: number;
  /** Writes and removals waiting to be sent. */
  pending: number;
}
