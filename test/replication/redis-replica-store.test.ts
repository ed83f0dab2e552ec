import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ReplicaStoreError } from '../../src/errors.js';
import { RedisReplicaStore, type ReplicaWrite } from '../../src/replication/index.js';
import { TRANSFER_SCRIPT } from '../../src/replication/redis-scripts.js';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { replicaStoreContract } from './replica-store.contract.js';

const hasRedis = redisServerAvailable();

function record(key: string, version: number, data: ReplicaWrite['data'] = { v: version }): ReplicaWrite {
  return { key, version, data, lastAccessAt: Date.now() };
}

/** A prefix no other test uses: each test gets an empty store on the shared server. */
const freshPrefix = (): string => `t${randomBytes(6).toString('hex')}:`;

describe.skipIf(!hasRedis)('RedisReplicaStore (real redis-server)', () => {
  let server: RedisServer;
  const stores: RedisReplicaStore[] = [];
  const servers: RedisServer[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    while (stores.length > 0) await stores.pop()?.close();
    while (servers.length > 0) await servers.pop()?.stop();
  });

  async function open(
    options: {
      url?: string;
      keyPrefix?: string;
      idleTimeoutMs?: number;
      commandTimeoutMs?: number;
      minReplicas?: number;
    } = {},
  ): Promise<RedisReplicaStore> {
    const store = await RedisReplicaStore.connect({
      url: options.url ?? server.url,
      keyPrefix: options.keyPrefix ?? freshPrefix(),
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
      ...(options.commandTimeoutMs !== undefined ? { commandTimeoutMs: options.commandTimeoutMs } : {}),
      ...(options.minReplicas !== undefined ? { minReplicas: options.minReplicas } : {}),
      epochCheckIntervalMs: 100,
    });
    stores.push(store);
    return store;
  }

  async function ownServer(args: readonly string[] = []): Promise<RedisServer> {
    const own = await startRedisServer({ args });
    servers.push(own);
    return own;
  }

  replicaStoreContract('RedisReplicaStore', async ({ idleTimeoutMs }) => {
    const store = await RedisReplicaStore.connect({
      url: server.url,
      keyPrefix: freshPrefix(),
      idleTimeoutMs,
    });
    return { store, cleanup: () => store.close() };
  });

  it('shares replicas, fencing and the epoch between stores on one Redis (several proxies)', async () => {
    const keyPrefix = freshPrefix();
    const a = await open({ keyPrefix });
    const b = await open({ keyPrefix });
    expect(b.epoch).toBe(a.epoch);
    expect(await a.write('node-1', [record('k1', 2, { cart: ['x'] })])).toEqual(['ok']);
    expect(await b.read('k1')).toMatchObject({ owner: 'node-1', version: 2, data: { cart: ['x'] } });
    expect(await b.write('node-1', [record('k1', 2)])).toEqual(['stale']);
    expect(await b.write('node-2', [record('k1', 3)])).toEqual(['not-owner']);
    expect(await b.transfer('k1', 'node-1', 'node-2')).toMatchObject({ owner: 'node-2', version: 2 });
    expect(await a.write('node-1', [record('k1', 3)])).toEqual(['not-owner']);
    expect(await a.keysOf('node-2')).toEqual(['k1']);
    expect(await a.keysOf('node-1')).toEqual([]);
  });

  it('answers a batch larger than one script call in order, one outcome per record', async () => {
    const store = await open();
    await store.write('node-2', [record('k300', 1)]);
    const batch = Array.from({ length: 600 }, (_, i) => record(`k${i % 400}`, i < 400 ? 2 : 1));
    const outcomes = await store.write('node-1', batch);
    expect(outcomes).toHaveLength(600);
    expect(outcomes.slice(0, 300).every((outcome) => outcome === 'ok')).toBe(true);
    expect(outcomes[300]).toBe('not-owner');
    expect(outcomes.slice(400).every((outcome) => outcome === 'stale')).toBe(true);
    expect((await store.keysOf('node-1')).length).toBe(399);
  });

  it('transfers each key to exactly one of two stores racing for it', async () => {
    const keyPrefix = freshPrefix();
    const a = await open({ keyPrefix });
    const b = await open({ keyPrefix });
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    await a.write(
      'node-1',
      keys.map((key) => record(key, 1)),
    );
    const results = await Promise.all(
      keys.map((key) =>
        Promise.all([a.transfer(key, 'node-1', 'node-2'), b.transfer(key, 'node-1', 'node-3')]),
      ),
    );
    for (const [i, [first, second]] of results.entries()) {
      expect((first === undefined) !== (second === undefined)).toBe(true);
      const winner = first ?? second;
      expect((await a.read(keys[i] as string))?.owner).toBe(winner?.owner);
    }
    const moved = (await a.keysOf('node-2')).length + (await a.keysOf('node-3')).length;
    expect(moved).toBe(keys.length);
    expect(await a.keysOf('node-1')).toEqual([]);
    expect(a.stats().transfers + b.stats().transfers).toBe(keys.length);
  });

  it('answers a resent transfer (same token, reply lost on a dropped connection) as the first', async () => {
    const keyPrefix = freshPrefix();
    const store = await open({ keyPrefix });
    await store.write('node-1', [record('k1', 3, { x: 1 })]);
    const raw = new Redis(server.url);
    raw.defineCommand('transfer', { lua: TRANSFER_SCRIPT, numberOfKeys: 4 });
    const transfer = (to: string, token: string): Promise<unknown> =>
      (raw as unknown as Record<string, (...args: string[]) => Promise<unknown>>).transfer!(
        `${keyPrefix}s:k1`,
        `${keyPrefix}o:node-1`,
        `${keyPrefix}o:${to}`,
        `${keyPrefix}owners`,
        'k1',
        'node-1',
        to,
        token,
      );
    try {
      const first = await transfer('node-2', 'token-a');
      expect(first).toEqual(['3', '{"x":1}', expect.any(String)]);
      expect(await transfer('node-2', 'token-a')).toEqual(first);
      expect(await transfer('node-2', 'token-b')).toBeNull();
      expect(await transfer('node-3', 'token-c')).toBeNull();
    } finally {
      raw.disconnect();
    }
    expect(await store.keysOf('node-2')).toEqual(['k1']);
    expect(await store.keysOf('node-1')).toEqual([]);
  });

  it('gets a new epoch, shared by every store, when Redis restarts empty', async () => {
    const own = await ownServer();
    const keyPrefix = freshPrefix();
    const a = await open({ url: own.url, keyPrefix });
    const b = await open({ url: own.url, keyPrefix });
    await a.write('node-1', [record('k1', 1)]);
    const before = a.epoch;
    await own.restart();
    await vi.waitFor(() => expect(a.epoch).not.toBe(before), { timeout: 10_000 });
    await vi.waitFor(() => expect(b.epoch).toBe(a.epoch), { timeout: 10_000 });
    expect(await a.read('k1')).toBeUndefined();
    // The restarted Redis has no scripts loaded: they are loaded again on first use.
    expect(await a.write('node-1', [record('k1', 1)])).toEqual(['ok']);
  });

  it('gets a new epoch when Redis is flushed without a restart', async () => {
    const keyPrefix = freshPrefix();
    const a = await open({ keyPrefix });
    const before = a.epoch;
    const raw = new Redis(server.url);
    try {
      await raw.del(`${keyPrefix}epoch`);
    } finally {
      raw.disconnect();
    }
    await vi.waitFor(() => expect(a.epoch).not.toBe(before), { timeout: 10_000 });
  });

  it('rejects at once with SLB_REPLICA_UNAVAILABLE while Redis is down, and works again after', async () => {
    const own = await ownServer();
    // A command timeout longer than the test's: a call that queued instead of failing would hang.
    const store = await open({ url: own.url, commandTimeoutMs: 120_000 });
    await store.write('node-1', [record('k1', 1)]);
    await own.stop();
    const calls: Array<() => Promise<unknown>> = [
      () => store.write('node-1', [record('k2', 1)]),
      () => store.read('k1'),
      () => store.readMany(['k1', 'k2']),
      () => store.touch('node-1', ['k1']),
      () => store.remove('node-1', ['k1']),
      () => store.transfer('k1', 'node-1', 'node-2'),
      () => store.keysOf('node-1'),
    ];
    for (const call of calls) {
      const error = await call().then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      expect(error).toBeInstanceOf(ReplicaStoreError);
      expect(error).toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
      expect((error as ReplicaStoreError).cause).toBeDefined();
    }
    await own.restart();
    await vi.waitFor(async () => expect(await store.write('node-1', [record('k2', 1)])).toEqual(['ok']), {
      timeout: 10_000,
      interval: 100,
    });
    expect(await store.read('k2')).toMatchObject({ owner: 'node-1', version: 1 });
  });

  it('with minReplicas, acknowledges only what a Redis replica holds too', async () => {
    // No 5 s wait for more replicas before the first (diskless) sync.
    const master = await ownServer(['--repl-diskless-sync-delay', '0']);
    const replica = await ownServer(['--replicaof', '127.0.0.1', String(master.port)]);
    // Generous while the replica is there (WAIT for up to 5 s on a busy machine)…
    const store = await open({
      url: master.url,
      keyPrefix: 'stickylb:',
      minReplicas: 1,
      commandTimeoutMs: 10_000,
    });
    const onReplica = new Redis(replica.url);
    try {
      // The replica is usable after its first sync.
      const onMaster = new Redis(master.url);
      try {
        await vi.waitFor(async () => expect(await onMaster.info('replication')).toMatch(/state=online/), {
          timeout: 10_000,
          interval: 50,
        });
      } finally {
        onMaster.disconnect();
      }
      expect(await store.write('node-1', [record('k1', 1)])).toEqual(['ok']);
      expect(await store.transfer('k1', 'node-1', 'node-2')).toMatchObject({ owner: 'node-2' });
      expect(await onReplica.hget('stickylb:s:k1', 'owner')).toBe('node-2');
    } finally {
      onReplica.disconnect();
    }
    await replica.stop();
    // …short once it is gone: each call then waits for the WAIT timeout.
    const impatient = await open({
      url: master.url,
      keyPrefix: 'stickylb:',
      minReplicas: 1,
      commandTimeoutMs: 400,
    });
    await expect(impatient.write('node-2', [record('k1', 2)])).rejects.toMatchObject({
      code: 'SLB_REPLICA_UNAVAILABLE',
    });
    await expect(impatient.transfer('k1', 'node-2', 'node-3')).rejects.toMatchObject({
      code: 'SLB_REPLICA_UNAVAILABLE',
    });
  });

  it('fails to connect with ReplicaStoreError when Redis is not there', async () => {
    const own = await ownServer();
    const url = own.url;
    await own.stop();
    await expect(
      RedisReplicaStore.connect({ url, idleTimeoutMs: 1000, commandTimeoutMs: 500 }),
    ).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
  });

  it('reloads its scripts after SCRIPT FLUSH', async () => {
    const store = await open();
    await store.write('node-1', [record('k1', 1)]);
    const raw = new Redis(server.url);
    try {
      await raw.script('FLUSH');
    } finally {
      raw.disconnect();
    }
    expect(await store.write('node-1', [record('k1', 2), record('k2', 1)])).toEqual(['ok', 'ok']);
    expect(await store.transfer('k1', 'node-1', 'node-2')).toMatchObject({ version: 2 });
  });

  it('expires replicas in Redis with the idle timeout, restarted by writes and touches only', async () => {
    const keyPrefix = freshPrefix();
    const store = await open({ keyPrefix, idleTimeoutMs: 5000 });
    const raw = new Redis(server.url);
    try {
      await store.write('node-1', [{ ...record('k1', 1), lastAccessAt: Date.now() - 2000 }]);
      const afterWrite = await raw.pttl(`${keyPrefix}s:k1`);
      expect(afterWrite).toBeGreaterThan(0);
      expect(afterWrite).toBeLessThanOrEqual(3000);
      await store.read('k1');
      expect(await raw.pttl(`${keyPrefix}s:k1`)).toBeLessThanOrEqual(afterWrite);
      await store.touch('node-1', ['k1']);
      expect(await raw.pttl(`${keyPrefix}s:k1`)).toBeGreaterThan(3000);
    } finally {
      raw.disconnect();
    }
  });

  it('counts live replicas per owner and drops expired ones from the owner index', async () => {
    const keyPrefix = freshPrefix();
    const store = await open({ keyPrefix, idleTimeoutMs: 200 });
    await store.write('node-1', [record('a', 1), record('b', 1)]);
    await store.write('node-2', [record('c', 1)]);
    expect(await store.countsByOwner()).toEqual(
      new Map([
        ['node-1', 2],
        ['node-2', 1],
      ]),
    );
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await store.countsByOwner()).toEqual(new Map());
    expect(await store.keysOf('node-1')).toEqual([]);
    expect(store.stats().expired).toBe(2);
    const raw = new Redis(server.url);
    try {
      expect(await raw.zcard(`${keyPrefix}o:node-1`)).toBe(0);
    } finally {
      raw.disconnect();
    }
  });

  it('refuses a Cluster key prefix without a hash tag (its scripts span keys)', async () => {
    await expect(
      RedisReplicaStore.connect({
        cluster: { nodes: [{ host: '127.0.0.1', port: 1 }] },
        keyPrefix: 'stickylb:',
        idleTimeoutMs: 1000,
      }),
    ).rejects.toThrow(RangeError);
  });
});
