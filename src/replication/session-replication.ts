import type { Logger } from '../log.js';
import type { SessionWrite } from '../plugin/index.js';
import type { CompartmentData, SessionEntry, SessionStore } from '../session/index.js';
import type { ReplicatedSession, Replicator } from './replicator.js';

/**
 * Connects a node's session store to its replicator: returns the session plugin's `onWrite`
 * seam, and replicates what the store does by itself — a touch (a session only read must not
 * expire in the replica store) and an eviction at `maxSessions` (a session the node dropped
 * must not come back with a failover, nor fill the replica store). An expiry is not sent: the
 * replica expires on its own, and an `expired` event may come from a stale copy being
 * replaced by an install, whose removal would delete the live replica.
 */
export function replicateSessions(
  store: SessionStore<CompartmentData>,
  replicator: Replicator,
  logger: Logger,
): (write: SessionWrite) => Promise<void> {
  store.on('touched', (entry) => replicator.touch(entry.id));
  const removeDropped = (entry: SessionEntry<CompartmentData>): void => {
    // Not awaited by anyone: a failure leaves the replica to expire on its own.
    replicator.remove(entry.id).catch((error: unknown) => {
      logger.debug({ err: error }, 'replicating a dropped session failed');
    });
  };
  store.on('evicted', removeDropped);
  return (write) => {
    if (write.kind === 'deleted') return replicator.remove(write.key);
    const { key, entry } = write;
    if (!write.isNew) return replicator.write(key, entry.version, entry.value, entry.lastAccessAt);
    // Created by this request: a replica of an earlier life of its key goes first (a removal
    // drops a write queued before it), in the same round, as rounds send removals before
    // writes. For a key never replicated it is a no-op.
    const removed = replicator.remove(key);
    const written = replicator.write(key, entry.version, entry.value, entry.lastAccessAt);
    return Promise.all([removed, written]).then(() => undefined);
  };
}

/**
 * Reads a session of `store` for `Replicator.seed`, as it is now, without touching it
 * (undefined once it is gone). A re-seed sends sessions batch by batch, over seconds: each is
 * read as its batch is sent, so one destroyed meanwhile is skipped and one written again goes
 * as it is then.
 */
export function readSession(
  store: SessionStore<CompartmentData>,
): (key: string) => ReplicatedSession | undefined {
  return (key) => {
    const entry = store.peek(key);
    return entry === undefined
      ? undefined
      : { key, version: entry.version, data: entry.value, lastAccessAt: entry.lastAccessAt };
  };
}
