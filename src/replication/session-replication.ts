import type { Logger } from '../log.js';
import type { SessionWrite } from '../plugin/index.js';
import type { CompartmentData, SessionStore } from '../session/index.js';
import type { Replicator } from './replicator.js';

/**
 * Connects a node's session store to its replicator: returns the session plugin's `onWrite`
 * seam, and replicates what the store does by itself — a touch (a session only read must not
 * expire in the replica store) and an eviction at `maxSessions` (the replica of a session the
 * node dropped must not come back with a failover, nor fill the replica store).
 */
export function replicateSessions(
  store: SessionStore<CompartmentData>,
  replicator: Replicator,
  logger: Logger,
): (write: SessionWrite) => Promise<void> {
  store.on('touched', (entry) => replicator.touch(entry.id));
  store.on('evicted', (entry) => {
    // Not awaited by anyone: a failure leaves the replica to expire on its own.
    replicator.remove(entry.id).catch((error: unknown) => {
      logger.debug({ err: error }, 'replicating an eviction failed');
    });
  });
  return (write) => {
    if (write.kind === 'deleted') return replicator.remove(write.key);
    const { key, entry } = write;
    if (!write.isNew) return replicator.write(key, entry.version, entry.value, entry.lastAccessAt);
    // Created here again (after a destroy, an eviction or an expiry), the session starts over
    // at version 1: a replica of its earlier life would refuse every version up to its own as
    // stale, acknowledged but never stored. So its removal is queued first (a removal drops a
    // write queued before it), and goes in the same round: rounds send removals before
    // writes. For a key never replicated it is a no-op.
    const removed = replicator.remove(key);
    const written = replicator.write(key, entry.version, entry.value, entry.lastAccessAt);
    return Promise.all([removed, written]).then(() => undefined);
  };
}
