import type { Logger } from '../log.js';
import type { SessionWrite } from '../plugin/index.js';
import type { CompartmentData, SessionEntry, SessionStore } from '../session/index.js';
import type { ReplicatedSession, Replicator } from './replicator.js';

/**
 * Connects a node's session store to its replicator: returns the session plugin's `onWrite`
 * seam, and replicates what the store does by itself — a touch (a session only read must not
 * expire in the replica store), an eviction at `maxSessions` and an expiry. A session the node
 * dropped must not come back with a failover, nor fill the replica store, nor (created here
 * again under its key, at version 1) have its new versions refused as stale by its old replica,
 * which may outlive it here by up to a touch interval.
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
  store.on('expired', removeDropped);
  return (write) => {
    if (write.kind === 'deleted') return replicator.remove(write.key);
    const { key, entry } = write;
    if (!write.isRecreated) return replicator.write(key, entry.version, entry.value, entry.lastAccessAt);
    // Destroyed and created again in this request: the removal goes first (a removal drops a
    // write queued before it), in the same round, as rounds send removals before writes.
    const removed = replicator.remove(key);
    const written = replicator.write(key, entry.version, entry.value, entry.lastAccessAt);
    return Promise.all([removed, written]).then(() => undefined);
  };
}

/**
 * The sessions among `ids` still live in `store`, each read when the iteration reaches it (a
 * re-seed sends them batch by batch, over seconds): one destroyed meanwhile is skipped, one
 * written again goes as it is then. A copy taken up front could reach the store after its
 * session's new life, and its older version would refuse the new life's writes as stale.
 */
export function* sessionsAsTheyAre(
  store: SessionStore<CompartmentData>,
  ids: readonly string[],
): Generator<ReplicatedSession> {
  for (const id of ids) {
    const entry = store.peek(id);
    if (entry !== undefined) {
      yield { key: id, version: entry.version, data: entry.value, lastAccessAt: entry.lastAccessAt };
    }
  }
}
