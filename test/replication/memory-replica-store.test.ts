import { describe, expect, it, vi } from 'vitest';
import { MemoryReplicaStore } from '../../src/replication/index.js';
import { replicaStoreContract } from './replica-store.contract.js';

replicaStoreContract('MemoryReplicaStore', async ({ idleTimeoutMs }) => {
  const store = new MemoryReplicaStore({ idleTimeoutMs });
  store.start();
  return { store, cleanup: () => store.close() };
});

describe('MemoryReplicaStore', () => {
  it('sweeps expired replicas in the background once started', async () => {
    let now = Date.now();
    const store = new MemoryReplicaStore({ idleTimeoutMs: 1000, sweepIntervalMs: 10, now: () => now });
    store.start();
    try {
      await store.write('node-1', [{ key: 'k1', version: 1, data: {}, lastAccessAt: now }]);
      expect(store.stats().records).toBe(1);
      now += 1000;
      await vi.waitFor(() => expect(store.stats()).toMatchObject({ records: 0, expired: 1 }));
    } finally {
      await store.close();
    }
  });

  it('keeps its counts per owner as replicas expire, make room, are swept and removed', async () => {
    let now = Date.now();
    const store = new MemoryReplicaStore({
      idleTimeoutMs: 1000,
      maxSessions: 3,
      sweepIntervalMs: 10,
      now: () => now,
    });
    const record = (key: string) => ({ key, version: 1, data: {}, lastAccessAt: now });
    try {
      await store.write('node-1', [record('a'), record('b')]);
      now += 600;
      await store.write('node-2', [record('c')]);
      now += 400;
      // Full, and 'a' and 'b' have expired: the least recently used one makes room.
      await store.write('node-2', [record('d')]);
      expect(await store.countsByOwner()).toEqual(
        new Map([
          ['node-1', 1],
          ['node-2', 2],
        ]),
      );
      // The sweep takes 'b': node-1 owns nothing, and is no longer listed.
      store.start();
      await vi.waitFor(async () => expect(await store.countsByOwner()).toEqual(new Map([['node-2', 2]])));
      await store.remove('node-2', ['c', 'd']);
      expect(await store.countsByOwner()).toEqual(new Map());
    } finally {
      await store.close();
    }
  });

  it('refuses writes with a version that is not a positive integer, applying none of the batch', async () => {
    const store = new MemoryReplicaStore({ idleTimeoutMs: 60_000 });
    const good = { key: 'a', version: 1, data: {}, lastAccessAt: Date.now() };
    await expect(store.write('node-1', [good, { ...good, key: 'b', version: 1.5 }])).rejects.toThrow(
      RangeError,
    );
    expect(await store.read('a')).toBeUndefined();
    await store.close();
  });

  it('fails a write with ReplicaStoreError when full of active replicas', async () => {
    const store = new MemoryReplicaStore({ idleTimeoutMs: 60_000, maxSessions: 1 });
    const at = Date.now();
    await store.write('node-1', [{ key: 'a', version: 1, data: {}, lastAccessAt: at }]);
    await expect(
      store.write('node-1', [{ key: 'b', version: 1, data: {}, lastAccessAt: at }]),
    ).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
    await store.close();
  });
});
