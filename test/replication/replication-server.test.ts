import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createSilentLogger } from '../../src/log.js';
import { freePort } from '../helpers/free-port.js';
import { SECRET_HEADER } from '../../src/protocol.js';
import {
  ChannelReplicaTransport,
  MemoryReplicaStore,
  REPLICA_ROUTES,
  Replicator,
  SessionMovedError,
  buildReplicationServer,
  type ReplicatedSession,
  type ReplicatorOptions,
} from '../../src/replication/index.js';

const SECRET = 'test-secret-0123456789';
const logger = createSilentLogger();

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

interface Running {
  store: MemoryReplicaStore;
  app: FastifyInstance;
  port: number;
  endpoint: string;
  close(): Promise<void>;
}

/**
 * A replication server with a fresh memory store on 127.0.0.1. Its port is outside the
 * ephemeral range (freePort), so a test can start it again on the same port after a close.
 */
async function startServer(
  port?: number,
  store = new MemoryReplicaStore({ idleTimeoutMs: 60_000 }),
): Promise<Running> {
  port ??= await freePort();
  const app = await buildReplicationServer({ store, secret: SECRET, logger });
  await app.listen({ host: '127.0.0.1', port });
  const actual = (app.server.address() as AddressInfo).port;
  let isClosed = false;
  const close = async (): Promise<void> => {
    if (isClosed) return;
    isClosed = true;
    await app.close();
    await store.close();
  };
  cleanups.push(close);
  return { store, app, port: actual, endpoint: `http://127.0.0.1:${actual}`, close };
}

type TransportKind = 'http' | 'channel';

/** A Replicator over HTTP (`endpoint` option) or over the framed channel (a ChannelReplicaTransport). */
function startReplicator(
  kind: TransportKind,
  endpoint: string,
  options: Partial<ReplicatorOptions> & { secret?: string } = {},
): Replicator {
  const { secret = SECRET, ...rest } = options;
  const replicator = new Replicator({
    nodeId: 'node-1',
    ...(kind === 'http'
      ? { endpoint, secret }
      : { transport: new ChannelReplicaTransport({ endpoint, secret, timeoutMs: 5000 }) }),
    mode: 'sync',
    flushIntervalMs: 10,
    logger,
    ...(rest as Partial<ReplicatorOptions>),
  } as ReplicatorOptions);
  cleanups.push(() => replicator.close());
  return replicator;
}

async function call(
  endpoint: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = { [SECRET_HEADER]: SECRET },
): Promise<{ status: number; body: any }> {
  const response = await fetch(endpoint + path, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: response.status, body: await response.json() };
}

const record = (key: string, version = 1) => ({
  key,
  version,
  lastAccessAt: Date.now(),
  data: { n: version },
});
const keyOf = (i: number): string => `key-${i}`;

/** A memory store that applies each call at once but answers only when `release()` is called. */
class HeldStore extends MemoryReplicaStore {
  #gate: Promise<void> = new Promise(() => {});
  #open: () => void = () => {};
  isHolding: { write: boolean; remove: boolean } = { write: false, remove: false };

  constructor() {
    super({ idleTimeoutMs: 60_000 });
    this.#gate = new Promise((resolve) => (this.#open = resolve));
  }

  release(): void {
    this.#open();
  }

  override async write(
    ...args: Parameters<MemoryReplicaStore['write']>
  ): ReturnType<MemoryReplicaStore['write']> {
    const outcomes = await super.write(...args);
    if (this.isHolding.write) await this.#gate;
    return outcomes;
  }

  override async remove(...args: Parameters<MemoryReplicaStore['remove']>): Promise<void> {
    await super.remove(...args);
    if (this.isHolding.remove) await this.#gate;
  }
}

/** `Replicator.seed` over sessions given up front. */
function seedAll(replicator: Replicator, sessions: readonly ReplicatedSession[]) {
  const byKey = new Map(sessions.map((session) => [session.key, session]));
  return replicator.seed([...byKey.keys()], (key) => byKey.get(key));
}

describe('buildReplicationServer', () => {
  const routes = [
    { method: 'POST', path: REPLICA_ROUTES.write, body: { node: 'node-1', records: [record('k1')] } },
    { method: 'POST', path: REPLICA_ROUTES.touch, body: { node: 'node-1', keys: ['k1'] } },
    { method: 'POST', path: REPLICA_ROUTES.remove, body: { node: 'node-1', keys: ['k1'] } },
    { method: 'GET', path: REPLICA_ROUTES.epoch, body: undefined },
    { method: 'POST', path: REPLICA_ROUTES.read, body: { node: 'node-1', key: 'k1' } },
  ];

  it.each(
    routes.flatMap((route) => [
      { ...route, secret: 'missing', headers: {} },
      { ...route, secret: 'wrong', headers: { [SECRET_HEADER]: 'not-the-secret-at-all' } },
      { ...route, secret: 'prefix', headers: { [SECRET_HEADER]: SECRET.slice(0, -1) } },
    ]),
  )('answers 401 JSON to $method $path with a $secret secret', async ({ method, path, body, headers }) => {
    const { endpoint, store } = await startServer();
    const answer = await call(endpoint, method, path, body, headers);
    expect(answer).toMatchObject({ status: 401, body: { error: 'SLB_UNAUTHORIZED' } });
    expect(typeof answer.body.message).toBe('string');
    expect(store.stats()).toMatchObject({ writeCalls: 0, touchCalls: 0, records: 0 });
  });

  it.each(routes)('answers $method $path with the store epoch', async ({ method, path, body }) => {
    const { endpoint, store } = await startServer();
    const answer = await call(endpoint, method, path, body);
    expect(answer.status).toBe(200);
    expect(answer.body.epoch).toBe(store.epoch);
  });

  const tooMany = Array.from({ length: 1001 }, (_, i) => record(keyOf(i)));
  it.each([
    { case: 'records not an array', path: REPLICA_ROUTES.write, body: { node: 'node-1', records: {} } },
    { case: 'no node', path: REPLICA_ROUTES.write, body: { records: [] } },
    { case: 'a malformed node id', path: REPLICA_ROUTES.write, body: { node: '-x', records: [] } },
    { case: 'a key with a slash', path: REPLICA_ROUTES.write, body: { node: 'n', records: [record('a/b')] } },
    {
      case: 'a 65-char key',
      path: REPLICA_ROUTES.write,
      body: { node: 'n', records: [record('k'.repeat(65))] },
    },
    { case: 'version 0', path: REPLICA_ROUTES.write, body: { node: 'n', records: [record('k', 0)] } },
    { case: 'version 1.5', path: REPLICA_ROUTES.write, body: { node: 'n', records: [record('k', 1.5)] } },
    {
      case: 'a string version',
      path: REPLICA_ROUTES.write,
      body: { node: 'n', records: [{ ...record('k'), version: '2' }] },
    },
    {
      case: 'no lastAccessAt',
      path: REPLICA_ROUTES.write,
      body: { node: 'n', records: [{ key: 'k', version: 1, data: {} }] },
    },
    {
      case: 'no data',
      path: REPLICA_ROUTES.write,
      body: { node: 'n', records: [{ key: 'k', version: 1, lastAccessAt: 1 }] },
    },
    {
      case: 'an unknown record field',
      path: REPLICA_ROUTES.write,
      body: { node: 'n', records: [{ ...record('k'), owner: 'node-2' }] },
    },
    { case: '1001 records', path: REPLICA_ROUTES.write, body: { node: 'n', records: tooMany } },
    { case: 'a body that is not JSON', path: REPLICA_ROUTES.write, body: '{"node":' },
    { case: 'keys not an array', path: REPLICA_ROUTES.touch, body: { node: 'n', keys: 'k1' } },
    { case: 'a malformed key', path: REPLICA_ROUTES.remove, body: { node: 'n', keys: ['k 1'] } },
    { case: 'a read of a malformed key', path: REPLICA_ROUTES.read, body: { node: 'n', key: 'k/1' } },
    { case: 'a read without a key', path: REPLICA_ROUTES.read, body: { node: 'n' } },
    { case: 'a read with keys', path: REPLICA_ROUTES.read, body: { node: 'n', key: 'k', keys: [] } },
  ])('answers 400 JSON to a body with $case', async ({ path, body }) => {
    const { endpoint, store } = await startServer();
    const answer = await call(endpoint, 'POST', path, body);
    expect(answer).toMatchObject({ status: 400, body: { error: 'SLB_BAD_REQUEST' } });
    expect(typeof answer.body.message).toBe('string');
    expect(store.stats()).toMatchObject({ writeCalls: 0, touchCalls: 0, records: 0 });
  });

  it('answers 404 JSON to other paths and methods', async () => {
    const { endpoint } = await startServer();
    expect(await call(endpoint, 'GET', REPLICA_ROUTES.write)).toMatchObject({
      status: 404,
      body: { error: 'SLB_NOT_FOUND' },
    });
  });
});

describe.each<TransportKind>(['http', 'channel'])('Replicator over %s', (kind) => {
  it('resolves a sync write once the store holds it', async () => {
    const { endpoint, store } = await startServer();
    const replicator = startReplicator(kind, endpoint);
    const at = Date.now() - 1000;
    await replicator.write('k1', 1, { values: { count: 1 }, children: {} }, at);
    expect(await store.read('k1')).toEqual({
      key: 'k1',
      version: 1,
      owner: 'node-1',
      data: { values: { count: 1 }, children: {} },
      lastAccessAt: at,
    });
    expect(replicator.epoch).toBe(store.epoch);
  });

  it('replicates the data as it was when write was called, not as later mutated', async () => {
    const { endpoint, store } = await startServer();
    const replicator = startReplicator(kind, endpoint);
    const data = { count: 1 };
    const written = replicator.write('k1', 1, data, Date.now());
    data.count = 2;
    await written;
    expect((await store.read('k1'))?.data).toEqual({ count: 1 });
  });

  it('sends concurrent sync writes in one request', async () => {
    const { endpoint, store } = await startServer();
    const replicator = startReplicator(kind, endpoint);
    await Promise.all(Array.from({ length: 20 }, (_, i) => replicator.write(keyOf(i), 1, {}, Date.now())));
    expect(store.stats()).toMatchObject({ writeCalls: 1, writes: 20, records: 20 });
  });

  it('resolves a sync write answered stale (a newer version is already stored)', async () => {
    const { endpoint, store } = await startServer();
    const replicator = startReplicator(kind, endpoint);
    await replicator.write('k1', 5, { v: 5 }, Date.now());
    await expect(replicator.write('k1', 4, { v: 4 }, Date.now())).resolves.toBeUndefined();
    expect(await store.read('k1')).toMatchObject({ version: 5, data: { v: 5 } });
  });

  it('rejects a write with SessionMovedError once another node owns the session', async () => {
    const { endpoint, store } = await startServer();
    const onSessionMoved = vi.fn();
    const replicator = startReplicator(kind, endpoint, { onSessionMoved });
    await replicator.write('k1', 1, {}, Date.now());
    await store.transfer('k1', 'node-1', 'node-2');
    const failure = replicator.write('k1', 2, {}, Date.now());
    await expect(failure).rejects.toBeInstanceOf(SessionMovedError);
    await expect(failure).rejects.toMatchObject({ code: 'SLB_SESSION_MOVED', statusCode: 409, key: 'k1' });
    expect(onSessionMoved).toHaveBeenCalledWith('k1');
    expect(await store.read('k1')).toMatchObject({ owner: 'node-2', version: 1 });
  });

  it('rejects with ReplicaStoreError when the store is unreachable', async () => {
    const { endpoint, close } = await startServer();
    await close();
    const replicator = startReplicator(kind, endpoint);
    await expect(replicator.write('k1', 1, {}, Date.now())).rejects.toMatchObject({
      code: 'SLB_REPLICA_UNAVAILABLE',
    });
  });

  it('rejects with ReplicaStoreError when the secret is wrong', async () => {
    const { endpoint, store } = await startServer();
    const replicator = startReplicator(kind, endpoint, { secret: 'some-other-secret-value' });
    await expect(replicator.write('k1', 1, {}, Date.now())).rejects.toMatchObject({
      code: 'SLB_REPLICA_UNAVAILABLE',
      message: expect.stringContaining('401'),
    });
    expect(store.stats().records).toBe(0);
  });

  it('reads back a replica this node owns, and nothing for one it does not or one that is gone', async () => {
    const { endpoint, store } = await startServer();
    const replicator = startReplicator(kind, endpoint);
    const at = Date.now() - 1000;
    // Bigger than an ack frame ever is: a read's answer carries the whole session.
    const data = { values: { blob: 'x'.repeat(200_000) } };
    await replicator.write('k1', 3, data, at);
    expect(await replicator.read('k1')).toEqual({ key: 'k1', version: 3, data, lastAccessAt: at });
    await store.write('node-2', [{ key: 'k2', version: 1, lastAccessAt: at, data: {} }]);
    expect(await replicator.read('k2')).toBeUndefined();
    expect(await replicator.read('never-written')).toBeUndefined();
    expect(replicator.stats().readRequests).toBe(3);
    expect(replicator.epoch).toBe(store.epoch);
  });

  it('does not read a session whose write is still queued here: its own word is newer', async () => {
    const { endpoint, store } = await startServer();
    const replicator = startReplicator(kind, endpoint, { mode: 'async', flushIntervalMs: 60_000 });
    await store.write('node-1', [{ key: 'k1', version: 1, lastAccessAt: Date.now(), data: { old: 1 } }]);
    await replicator.remove('k1');
    expect(await replicator.read('k1')).toBeUndefined();
    expect(replicator.stats().readRequests).toBe(0);
  });

  it('rejects a read with ReplicaStoreError when the store is unreachable', async () => {
    const { endpoint, close } = await startServer();
    await close();
    const replicator = startReplicator(kind, endpoint);
    await expect(replicator.read('k1')).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
  });

  it('rejects a write with a malformed key before sending anything', async () => {
    const { endpoint, store } = await startServer();
    const replicator = startReplicator(kind, endpoint);
    await expect(replicator.write('bad key', 1, {}, Date.now())).rejects.toThrow(RangeError);
    expect(store.stats().writeCalls).toBe(0);
  });

  it('removes a replica, in order with writes of the same key', async () => {
    const { endpoint, store } = await startServer();
    const replicator = startReplicator(kind, endpoint);
    await replicator.write('gone', 3, {}, Date.now());
    await replicator.write('again', 3, { old: true }, Date.now());
    // Destroyed and re-created under the same key, all before the next round goes out.
    const pending = [
      replicator.remove('gone'),
      replicator.remove('again'),
      replicator.write('again', 1, { old: false }, Date.now()),
    ];
    await Promise.all(pending);
    expect(await store.read('gone')).toBeUndefined();
    expect(await store.read('again')).toMatchObject({ version: 1, data: { old: false } });
  });

  it.runIf(kind === 'channel')(
    'sends a sync write while an earlier round is unanswered (ordered transport: rounds overlap)',
    async () => {
      const store = new HeldStore();
      store.isHolding.write = true;
      const { endpoint } = await startServer(undefined, store);
      const replicator = startReplicator(kind, endpoint);
      const first = replicator.write('k1', 1, {}, Date.now());
      await vi.waitFor(() => expect(store.stats().writeCalls).toBe(1));
      const second = replicator.write('k2', 1, {}, Date.now());
      await vi.waitFor(() => expect(store.stats().writeCalls).toBe(2));
      store.release();
      await Promise.all([first, second]);
      expect(replicator.stats()).toMatchObject({ writeRequests: 2, pending: 0 });
    },
  );

  it('never lets a later removal pass an earlier round: a write waiting on its round lands before the removal', async () => {
    const store = new HeldStore();
    const { endpoint } = await startServer(undefined, store);
    const replicator = startReplicator(kind, endpoint);
    await replicator.write('x', 1, {}, Date.now());
    store.isHolding.remove = true;
    // One round: remove x (held), then write k v3 once the removal is answered.
    const round = [replicator.remove('x'), replicator.write('k', 3, {}, Date.now())];
    await vi.waitFor(() => expect(store.stats().removes).toBe(1));
    // A later round removes k: it must reach the store after the write of k above.
    const removal = replicator.remove('k');
    await new Promise((resolve) => setTimeout(resolve, 20));
    store.release();
    await Promise.all([...round, removal]);
    expect(await store.read('k')).toBeUndefined();
    expect(store.stats().removes).toBe(2);
  });

  it('batches async writes: N writes, one request, newest version per key', async () => {
    const { endpoint, store } = await startServer();
    const replicator = startReplicator(kind, endpoint, { mode: 'async', flushIntervalMs: 60_000 });
    for (let i = 0; i < 50; i++) await replicator.write(keyOf(i), 1, { i }, Date.now());
    await replicator.write(keyOf(0), 2, { i: 'newer' }, Date.now());
    expect(store.stats().writeCalls).toBe(0);
    await replicator.flush();
    expect(store.stats()).toMatchObject({ writeCalls: 1, writes: 50 });
    expect(await store.read(keyOf(0))).toMatchObject({ version: 2, data: { i: 'newer' } });
    expect(replicator.stats()).toMatchObject({ writeRequests: 1, recordsSent: 50, pending: 0 });
  });

  it('flushes async writes every flushIntervalMs on its own', async () => {
    const { endpoint, store } = await startServer();
    const replicator = startReplicator(kind, endpoint, { mode: 'async', flushIntervalMs: 10 });
    await replicator.write('k1', 1, {}, Date.now());
    await replicator.write('k2', 1, {}, Date.now());
    await vi.waitFor(async () => expect(await store.read('k2')).toBeDefined());
    expect(store.stats().writeCalls).toBe(1);
  });

  it('keeps failed async writes queued and sends them once the store is back', async () => {
    const first = await startServer();
    await first.close();
    const replicator = startReplicator(kind, first.endpoint, { mode: 'async', flushIntervalMs: 60_000 });
    await replicator.write('k1', 1, { kept: true }, Date.now());
    await expect(replicator.flush()).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
    expect(replicator.stats().pending).toBe(1);
    const second = await startServer(first.port);
    await replicator.flush();
    expect(await second.store.read('k1')).toMatchObject({ version: 1, data: { kept: true } });
  });

  it('sends touched keys in one batch per touch interval', async () => {
    const { endpoint, store } = await startServer();
    const replicator = startReplicator(kind, endpoint, { touchIntervalMs: 20 });
    await Promise.all(['a', 'b', 'c'].map((key) => replicator.write(key, 1, {}, Date.now())));
    for (let round = 0; round < 3; round++) for (const key of ['a', 'b', 'c']) replicator.touch(key);
    await vi.waitFor(() => expect(store.stats().touches).toBe(3));
    expect(store.stats().touchCalls).toBe(1);
  });

  it('calls onEpochChange when the store restarts, and seed writes every session again', async () => {
    const first = await startServer();
    const changes: string[] = [];
    let reseeded: Promise<unknown> | undefined;
    const sessions = Array.from({ length: 1200 }, (_, i) => ({
      key: keyOf(i),
      version: 2,
      data: { i },
      lastAccessAt: Date.now(),
    }));
    const replicator: Replicator = startReplicator(kind, first.endpoint, {
      onEpochChange: (epoch) => {
        changes.push(epoch);
        reseeded = seedAll(replicator, sessions);
      },
    });
    await replicator.write('k1', 1, {}, Date.now());
    expect(changes).toEqual([]);
    await first.close();

    const second = await startServer(first.port);
    await replicator.write('k2', 1, {}, Date.now());
    expect(changes).toEqual([second.store.epoch]);
    await expect(reseeded).resolves.toEqual({ written: 1200, stale: 0, moved: 0, skipped: 0 });
    expect(second.store.stats()).toMatchObject({ records: 1201, writeCalls: 1 + 3 });
    expect(await second.store.read(keyOf(1199))).toMatchObject({ version: 2, owner: 'node-1' });
  });

  it('retries a re-seed that failed on each touch tick until it succeeds, and counts the failure', async () => {
    const first = await startServer();
    const sessions = [{ key: 'only-read', version: 3, data: { n: 3 }, lastAccessAt: Date.now() }];
    let calls = 0;
    const replicator: Replicator = startReplicator(kind, first.endpoint, {
      touchIntervalMs: 20,
      onEpochChange: async () => {
        // The first seed fails (one batch timed out, say); the epoch stays the same.
        if (calls++ === 0) throw new Error('replica store did not answer');
        await seedAll(replicator, sessions);
      },
    });
    await replicator.write('only-read', 3, { n: 3 }, Date.now());
    await first.close();
    const second = await startServer(first.port);
    // The session is only read from now on: nothing but the retried seed writes it again.
    await vi.waitFor(async () => expect(await second.store.read('only-read')).toMatchObject({ version: 3 }));
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(replicator.stats().failedRequests).toBeGreaterThanOrEqual(1);
  });

  it('skips a session seed cannot replicate and writes the rest', async () => {
    const { endpoint, store } = await startServer();
    const replicator = startReplicator(kind, endpoint);
    const at = Date.now();
    const result = await seedAll(replicator, [
      { key: 'good-1', version: 1, data: {}, lastAccessAt: at },
      { key: 'bad key', version: 1, data: {}, lastAccessAt: at },
      { key: 'good-2', version: 1, data: {}, lastAccessAt: at },
    ]);
    expect(result).toEqual({ written: 2, stale: 0, moved: 0, skipped: 1 });
    expect(store.stats().records).toBe(2);
  });

  it('notices a restarted store while idle, through the touch tick', async () => {
    const first = await startServer();
    const onEpochChange = vi.fn();
    const replicator = startReplicator(kind, first.endpoint, { onEpochChange, touchIntervalMs: 20 });
    await replicator.checkEpoch();
    await first.close();
    const second = await startServer(first.port);
    await vi.waitFor(() => expect(onEpochChange).toHaveBeenCalledWith(second.store.epoch));
  });

  it('rejects writes once closed', async () => {
    const { endpoint } = await startServer();
    const replicator = startReplicator(kind, endpoint);
    await replicator.close();
    await expect(replicator.write('k1', 1, {}, Date.now())).rejects.toMatchObject({
      code: 'SLB_REPLICA_UNAVAILABLE',
    });
  });
});
