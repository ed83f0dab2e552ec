import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, type Logger } from '../../src/log.js';
import { RedisReplicaStore } from '../../src/replication/index.js';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const hasRedis = redisServerAvailable();
const PASSWORD = 'goodpass-7f3a91';

/** The real logger factory (its serializers and redaction), writing JSON lines to a string. */
function capturedLogger(): { logger: Logger; output: () => string } {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { logger: createLogger({ name: 'test', level: 'debug', destination }), output: () => text };
}

describe.skipIf(!hasRedis)('RedisReplicaStore logs (real redis-server)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()?.();
  });

  /** A server that wants PASSWORD (set after the start: the helper's start-up PING has none). */
  async function serverWithPassword(): Promise<RedisServer> {
    const server = await startRedisServer();
    cleanups.push(() => server.stop());
    const admin = new Redis(server.url);
    try {
      await admin.config('SET', 'requirepass', PASSWORD);
    } finally {
      admin.disconnect();
    }
    return server;
  }

  it('logs a password change of Redis without the password it sent', async () => {
    const server = await serverWithPassword();
    const { logger, output } = capturedLogger();
    const store = await RedisReplicaStore.connect({
      url: `redis://:${PASSWORD}@127.0.0.1:${server.port}`,
      idleTimeoutMs: 60_000,
      logger,
    });
    cleanups.push(() => store.close());
    await store.write('node-1', [{ key: 'k1', version: 1, data: { cart: 'x' }, lastAccessAt: Date.now() }]);
    const admin = new Redis({ port: server.port, host: '127.0.0.1', password: PASSWORD });
    try {
      await admin.config('SET', 'requirepass', 'another-password');
      // Its reconnect re-authenticates (HELLO 3 AUTH default <password>) and is refused.
      await admin.call('CLIENT', 'KILL', 'TYPE', 'normal');
    } finally {
      admin.disconnect();
    }
    await vi.waitFor(() => expect(output()).toContain('redis replica store unavailable'), {
      timeout: 10_000,
    });
    expect(output()).not.toContain(PASSWORD);
  });

  it('logs a refused password at start-up without the password', async () => {
    const server = await serverWithPassword();
    const { logger, output } = capturedLogger();
    const connecting = RedisReplicaStore.connect({
      url: `redis://:wrong-${PASSWORD}@127.0.0.1:${server.port}`,
      idleTimeoutMs: 60_000,
      logger,
    });
    await expect(connecting).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
    expect(output()).toContain('redis replica store unavailable');
    expect(output()).not.toContain(PASSWORD);
  });

  it('logs a failed script without the session keys and data it carried', async () => {
    const server = await startRedisServer();
    cleanups.push(() => server.stop());
    const { logger, output } = capturedLogger();
    const store = await RedisReplicaStore.connect({ url: server.url, idleTimeoutMs: 60_000, logger });
    cleanups.push(() => store.close());
    const admin = new Redis(server.url);
    try {
      // Every write script is refused: over maxmemory with no eviction.
      await admin.config('SET', 'maxmemory', '1');
      await expect(
        store.write('node-1', [
          { key: 'secret-session-key', version: 1, data: { card: 'data-4111' }, lastAccessAt: Date.now() },
        ]),
      ).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
      await admin.config('SET', 'maxmemory', '0');
    } finally {
      admin.disconnect();
    }
    expect(output()).toContain('redis replica store unavailable');
    expect(output()).not.toContain('secret-session-key');
    expect(output()).not.toContain('data-4111');
  });
});
