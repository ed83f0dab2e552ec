import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { RedisReplicaStore, redisConnectionOf } from '../../src/replication/index.js';
import { freePort } from '../helpers/free-port.js';
import {
  findRedisServer,
  redisServerAvailable,
  startRedisServer,
  type RedisServer,
} from '../helpers/redis-server.js';
import { waitFor } from '../integration/harness.js';

const hasRedis = redisServerAvailable();

describe('redisConnectionOf', () => {
  it('connects by redis.url when no sentinel is configured', () => {
    expect(redisConnectionOf({ url: 'redis://10.0.0.5:6379' })).toEqual({ url: 'redis://10.0.0.5:6379' });
  });

  it('asks the sentinels for the master, with the password and database of redis.url', () => {
    const config = parseConfig({
      replication: { store: 'redis' },
      redis: {
        url: 'redis://:p%40ss@ignored/2',
        sentinel: { name: 'main', nodes: ['10.0.0.5:26379', 'sentinel-b:26380'] },
      },
      nodes: [{ id: 'node-1', url: 'http://127.0.0.1:9001' }],
    });
    expect(redisConnectionOf(config.redis)).toEqual({
      redis: {
        name: 'main',
        sentinels: [
          { host: '10.0.0.5', port: 26379 },
          { host: 'sentinel-b', port: 26380 },
        ],
        password: 'p@ss',
        db: 2,
      },
    });
  });

  it.each([
    [{ name: '', nodes: ['a:1'] }, 'redis.sentinel.name'],
    [{ name: 'main', nodes: [] }, 'redis.sentinel.nodes'],
    [{ name: 'main', nodes: ['no-port'] }, 'redis.sentinel.nodes.0'],
  ])('refuses sentinel %j naming %s', (sentinel, key) => {
    expect(() =>
      parseConfig({ redis: { sentinel }, nodes: [{ id: 'n', url: 'http://127.0.0.1:1' }] }),
    ).toThrow(key);
  });
});

describe.skipIf(!hasRedis)('RedisReplicaStore through a real Redis Sentinel', () => {
  let master: RedisServer;
  let sentinel: ChildProcess | undefined;
  let sentinelPort = 0;
  let dir = '';

  beforeAll(async () => {
    master = await startRedisServer();
    dir = mkdtempSync(join(tmpdir(), 'stickylb-sentinel-'));
    sentinelPort = await freePort();
    // Sentinel rewrites its config file: it must be writable, one per sentinel.
    const file = join(dir, 'sentinel.conf');
    writeFileSync(
      file,
      `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor main 127.0.0.1 ${master.port} 1\n`,
    );
    sentinel = spawn(findRedisServer() as string, [file, '--sentinel'], { stdio: 'ignore' });
  });
  afterAll(async () => {
    if (sentinel !== undefined && sentinel.exitCode === null) {
      const exited = new Promise((resolve) => sentinel?.once('exit', resolve));
      sentinel.kill('SIGKILL');
      await exited;
    }
    await master?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds the master through the sentinel and replicates to it', async () => {
    const connection = redisConnectionOf({
      url: 'redis://ignored',
      sentinel: { name: 'main', nodes: [`127.0.0.1:${sentinelPort}`] },
    });
    const store = await waitFor(() =>
      RedisReplicaStore.connect({ ...connection, idleTimeoutMs: 60_000 }).catch(() => undefined),
    );
    try {
      expect(
        await store.write('node-1', [{ key: 'k1', version: 1, data: { n: 1 }, lastAccessAt: Date.now() }]),
      ).toEqual(['ok']);
      // Read back straight from the master: the sentinel led to it.
      const direct = await RedisReplicaStore.connect({ url: master.url, idleTimeoutMs: 60_000 });
      expect((await direct.read('k1'))?.owner).toBe('node-1');
      await direct.close();
    } finally {
      await store.close();
    }
  });
});
