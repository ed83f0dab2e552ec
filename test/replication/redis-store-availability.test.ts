import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisReplicaStore } from '../../src/replication/index.js';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const hasRedis = redisServerAvailable();

describe.skipIf(!hasRedis)('RedisReplicaStore availability (real redis-server)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('is available again once Redis answers, after one failed command on a connection that stayed up', async () => {
    const store = await RedisReplicaStore.connect({
      url: server.url,
      idleTimeoutMs: 60_000,
      epochCheckIntervalMs: 100,
    });
    const admin = new Redis(server.url);
    try {
      const transitions: boolean[] = [];
      store.on('availability', (isAvailable) => transitions.push(isAvailable));
      // One refused command (over maxmemory), then Redis is fine again; the test sends nothing
      // more: only the store's own epoch check can notice.
      await admin.config('SET', 'maxmemory', '1');
      await expect(
        store.write('node-1', [{ key: 'k1', version: 1, data: null, lastAccessAt: Date.now() }]),
      ).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
      await admin.config('SET', 'maxmemory', '0');
      await vi.waitFor(() => expect(transitions).toEqual([false, true]), { timeout: 5000 });
      expect(store.isAvailable).toBe(true);
    } finally {
      admin.disconnect();
      await store.close();
    }
  });
});
