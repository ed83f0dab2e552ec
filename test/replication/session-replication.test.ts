import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createSilentLogger } from '../../src/log.js';
import { sessionPlugin } from '../../src/plugin/index.js';
import { SESSION_HEADER, SESSION_NEW_HEADER } from '../../src/protocol.js';
import { ReplicaStoreError } from '../../src/errors.js';
import {
  MemoryReplicaStore,
  readSession,
  replicateSessions,
  Replicator,
  SessionRestorer,
  StoreReplicaTransport,
  type ReplicaTransport,
  type SerialisedRecord,
} from '../../src/replication/index.js';
import { getValue, SessionStore, setValue, type CompartmentData } from '../../src/session/index.js';

const KEY = 'r3cr34t3ds3ss10n';
const headers = { [SESSION_HEADER]: `${KEY}.r1.m4c` };

/** A transport to a real memory store that a test can restart (a new epoch) or make fail. */
class TestTransport implements ReplicaTransport {
  store = new MemoryReplicaStore({ idleTimeoutMs: 60_000 });
  /** Calls of `remove` still to fail, as an unreachable store would. */
  failRemoves = 0;
  /** Calls of `read` still to fail. */
  failReads = 0;
  /** Calls of `write` still to fail. */
  failWrites = 0;
  reads = 0;
  /** Runs before read number `n` (from 1) reaches the store: what happens meanwhile elsewhere. */
  beforeRead: ((n: number) => Promise<void>) | undefined;
  /** Writes wait for it (a batch slow on the wire) before they reach the store. */
  holdWrites: Promise<void> | undefined;
  writesStarted = 0;
  get #direct(): StoreReplicaTransport {
    return new StoreReplicaTransport(this.store);
  }
  async write(node: string, records: readonly SerialisedRecord[]) {
    this.writesStarted++;
    await this.holdWrites;
    if (this.failWrites > 0) {
      this.failWrites--;
      throw new ReplicaStoreError('replica store did not answer');
    }
    return this.#direct.write(node, records);
  }
  touch(node: string, keys: readonly string[]) {
    return this.#direct.touch(node, keys);
  }
  async remove(node: string, keys: readonly string[]) {
    if (this.failRemoves > 0) {
      this.failRemoves--;
      throw new ReplicaStoreError('replica store did not answer');
    }
    return this.#direct.remove(node, keys);
  }
  async read(node: string, key: string) {
    await this.beforeRead?.(++this.reads);
    if (this.failReads > 0) {
      this.failReads--;
      throw new ReplicaStoreError('replica store did not answer');
    }
    return this.#direct.read(node, key);
  }
  epoch() {
    return this.#direct.epoch();
  }
  close() {}
}

/**
 * A node as the demo server wires it: the session plugin's writes and the store's own
 * touches, evictions and expiries replicated into a real memory replica store.
 */
async function startNode(
  options: {
    maxSessions?: number;
    mode?: 'sync' | 'async';
    /** `async` mode's flush interval (default 10 ms). */
    flushIntervalMs?: number;
    now?: () => number;
    /** Wire the plugin's `restore` to the replicator, as the demo server does. */
    restore?: boolean;
    /** Another process of the same node: shares this transport's replica store (not closed here). */
    transport?: TestTransport;
  } = {},
) {
  const store = new SessionStore<CompartmentData>({
    idleTimeoutMs: 60_000,
    activeWindowMs: 0,
    ...(options.maxSessions !== undefined ? { maxSessions: options.maxSessions } : {}),
    ...(options.now !== undefined ? { now: options.now } : {}),
  });
  const transport = options.transport ?? new TestTransport();
  const replicator = new Replicator({
    nodeId: 'node-1',
    mode: options.mode ?? 'sync',
    flushIntervalMs: options.flushIntervalMs ?? 10,
    logger: createSilentLogger(),
    transport,
  });
  const restorer = new SessionRestorer(
    store,
    replicator,
    options.now !== undefined ? { now: options.now } : {},
  );
  const app = Fastify();
  await app.register(sessionPlugin, {
    store,
    onWrite: replicateSessions(store, replicator, createSilentLogger()),
    ...(options.restore ? { restore: restorer.restore } : {}),
  });
  await app.register(fastifyWebsocket);
  // Every message increments the counter from inside the WebSocket handler, answered once stored.
  app.get('/ws-increment', { websocket: true }, (socket, request) => {
    socket.on('message', (message) => {
      const run =
        message.toString() === 'destroy'
          ? Promise.resolve(request.session.destroy())
          : request.session.update((data) => {
              setValue(data, '', 'count', ((getValue(data, '', 'count') as number | undefined) ?? 0) + 1);
            });
      run.then(
        () => socket.send(JSON.stringify({ version: request.session.storedVersion })),
        (error: Error) => socket.send(JSON.stringify({ error: error.message })),
      );
    });
  });
  app.post('/increment', async (request) => {
    const count = await request.session.update((data) => {
      const next = ((getValue(data, '', 'count') as number | undefined) ?? 0) + 1;
      setValue(data, '', 'count', next);
      return next;
    });
    return { count };
  });
  app.get('/count', async (request) => ({ count: request.session.get('count') ?? 0 }));
  // Never looks at the session (an asset, a static page).
  app.get('/static', async () => ({ ok: true }));
  app.post('/twice', async (request) => {
    await request.session.set('count', 1);
    await request.session.set('count', 2);
    return { version: request.session.version };
  });
  // Writes, then answers only when the test opens `gate` (a handler with more work after its write).
  let openGate: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  app.post('/increment-then-wait', async (request) => {
    await request.session.update((data) => {
      setValue(data, '', 'count', ((getValue(data, '', 'count') as number | undefined) ?? 0) + 1);
    });
    await gate;
    return { version: request.session.version };
  });
  app.post('/destroy', async (request) => ({ existed: request.session.destroy() }));
  // "Start again": the usual log-out-and-in pattern, one request.
  app.post('/restart', async (request) => {
    request.session.destroy();
    await request.session.set('cart', 'fresh');
    return { version: request.session.version };
  });
  const close = async (): Promise<void> => {
    await app.close();
    await replicator.close();
    if (options.transport === undefined) await transport.store.close();
  };
  return {
    app,
    store,
    replicator,
    restorer,
    transport,
    openGate: () => openGate(),
    get replicas() {
      return transport.store;
    },
    close,
  };
}

/** The next write starts KEY over (count 1), and the replica is that new session, version and all. */
async function expectStartedOver(node: Awaited<ReturnType<typeof startNode>>): Promise<void> {
  const again = await post(node.app, '/increment');
  expect(again.json()).toEqual({ count: 1 });
  const replica = await node.replicas.read(KEY);
  expect(replica?.data).toMatchObject({ values: { count: 1 } });
  expect(replica?.version).toBe(node.store.peek(KEY)?.version);
}

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

const post = (app: FastifyInstance, url: string, key = KEY) =>
  app.inject({ method: 'POST', url, headers: { [SESSION_HEADER]: `${key}.r1.m4c` } });

describe('replicateSessions: a session created again under its key', () => {
  it('destroyed and written again in one request: the replica is the new session, not the old one', async () => {
    const node = await startNode();
    close = node.close;
    for (let i = 0; i < 5; i++) expect((await post(node.app, '/increment')).statusCode).toBe(200);
    expect((await node.replicas.read(KEY))?.version).toBeGreaterThan(2);

    const response = await node.app.inject({ method: 'POST', url: '/restart', headers });
    expect(response.statusCode).toBe(200);

    const local = node.store.peek(KEY);
    const replica = await node.replicas.read(KEY);
    expect(replica?.data).toEqual(local?.value);
    expect(replica?.data).toMatchObject({ values: { cart: 'fresh' } });
    expect(replica?.version).toBe(local?.version);
  });

  it('evicted at maxSessions: the replica goes too, and the session created again is replicated whole', async () => {
    const node = await startNode({ maxSessions: 1 });
    close = node.close;
    for (let i = 0; i < 3; i++) await post(node.app, '/increment');
    expect((await node.replicas.read(KEY))?.data).toMatchObject({ values: { count: 3 } });

    // Another session takes the only slot: KEY (idle at once, activeWindow 0) is evicted.
    await post(node.app, '/increment', 'an0th3rs3ss10nk3y');
    expect(node.store.peek(KEY)).toBeUndefined();
    await expect.poll(() => node.replicas.read(KEY)).toBeUndefined();

    // Back again: a new session at version 1, acknowledged and replicated as it is.
    await expectStartedOver(node);
  });

  it('expired on the node and back: the new session is replicated whole, not refused by the old replica', async () => {
    let now = Date.now();
    const node = await startNode({ now: () => now });
    close = node.close;
    for (let i = 0; i < 3; i++) await post(node.app, '/increment');
    // Expired here (the replica store, on its own clock, would keep it a while longer).
    now += 61_000;
    await expectStartedOver(node);
  });

  it('dropped on the node without an event (a copy deleted; a restart without `restore`) and back: the replica is the new session', async () => {
    const node = await startNode();
    close = node.close;
    for (let i = 0; i < 3; i++) await post(node.app, '/increment');
    // What an eviction by the proxy, a fenced write or a restart leaves: no copy, no event.
    node.store.delete(KEY);
    await expectStartedOver(node);
  });

  it('dropped, then created again by a request that only reads it: the next write still replaces the old replica', async () => {
    const node = await startNode();
    close = node.close;
    for (let i = 0; i < 5; i++) await post(node.app, '/increment');
    node.store.delete(KEY);
    // A read creates the session again at version 1, with nothing to replicate; only the
    // write of a later request reaches the replica store, where the old life is version 6.
    const read = await node.app.inject({ method: 'GET', url: '/count', headers });
    expect(read.json()).toEqual({ count: 0 });
    await expectStartedOver(node);
  });

  it('the first write of a new life answers after a later write: the acknowledged later write is the replica', async () => {
    const node = await startNode();
    close = node.close;
    for (let i = 0; i < 5; i++) await post(node.app, '/increment');
    node.store.delete(KEY);
    await node.app.inject({ method: 'GET', url: '/count', headers });
    // Version 2 is written by a request still busy after its write; version 3, by a request that
    // answers first (acknowledged: sync mode). Were the new life announced by version 2 alone,
    // version 3 would be refused as stale by the old life's version 6 (count 5), which a
    // failover would then restore, until the slow request answered.
    const slow = node.app.inject({ method: 'POST', url: '/increment-then-wait', headers });
    await expect.poll(() => node.store.peek(KEY)?.version).toBe(2);
    expect((await post(node.app, '/increment')).json()).toEqual({ count: 2 });
    const expected = { version: 3, data: { values: { count: 2 } } };
    expect(await node.replicas.read(KEY)).toMatchObject(expected);
    node.openGate();
    expect((await slow).statusCode).toBe(200);
    expect(await node.replicas.read(KEY)).toMatchObject(expected);
  });

  it('destroyed by another request while a write of it is still busy: the late write does not bring it back', async () => {
    const node = await startNode();
    close = node.close;
    for (let i = 0; i < 3; i++) await post(node.app, '/increment');
    const slow = node.app.inject({ method: 'POST', url: '/increment-then-wait', headers });
    await expect.poll(() => node.store.peek(KEY)?.version).toBe(5);
    // Log out: the session and its replica go.
    const destroy = await node.app.inject({ method: 'POST', url: '/destroy', headers });
    expect(destroy.statusCode).toBe(200);
    await expect.poll(() => node.replicas.read(KEY)).toBeUndefined();
    node.openGate();
    expect((await slow).statusCode).toBe(200);
    await node.replicator.flush();
    expect(await node.replicas.read(KEY)).toBeUndefined();
  });

  it('two writes in the request after a read created it: the replica is the last one', async () => {
    const node = await startNode();
    close = node.close;
    for (let i = 0; i < 5; i++) await post(node.app, '/increment');
    node.store.delete(KEY);
    await node.app.inject({ method: 'GET', url: '/count', headers });
    expect((await post(node.app, '/twice')).json()).toEqual({ version: 3 });
    const replica = await node.replicas.read(KEY);
    expect(replica).toMatchObject({ version: 3, data: { values: { count: 2 } } });
  });

  it('async mode: a round that fails sends the removal and then the write again, neither lost', async () => {
    const node = await startNode({ mode: 'async' });
    close = node.close;
    for (let i = 0; i < 3; i++) await post(node.app, '/increment');
    await node.replicator.flush();
    node.transport.failRemoves = 1;
    await node.app.inject({ method: 'POST', url: '/restart', headers });
    await expect(node.replicator.flush()).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
    await node.replicator.flush();
    const replica = await node.replicas.read(KEY);
    expect(replica?.data).toMatchObject({ values: { cart: 'fresh' } });
    expect(replica?.version).toBe(node.store.peek(KEY)?.version);
  });
});

describe('writes made inside a WebSocket handler', () => {
  /** A node listening on a real port, and a WebSocket to its /ws-increment for KEY. */
  async function openIncrementSocket() {
    const node = await startNode();
    close = node.close;
    await node.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = node.app.server.address() as AddressInfo;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws-increment`, { headers });
    await once(ws, 'open');
    return { node, ws };
  }

  it('are replicated as they are made (the 101 never passes onSend), each before the write resolves', async () => {
    const { node, ws } = await openIncrementSocket();
    for (let i = 1; i <= 3; i++) {
      ws.send('increment');
      const [answer] = (await once(ws, 'message')) as [Buffer];
      const { version } = JSON.parse(answer.toString()) as { version: number };
      // Already in the replica store when the handler's write resolved: nothing to wait for.
      const replica = await node.replicas.read(KEY);
      expect(replica).toMatchObject({ owner: 'node-1', version, data: { values: { count: i } } });
    }
    ws.send('destroy');
    await once(ws, 'message');
    await expect.poll(() => node.replicas.read(KEY)).toBeUndefined();
    ws.close();
    await once(ws, 'close');
  });

  it('a write that cannot be replicated closes the connection: the client reconnects, as after an HTTP 503', async () => {
    const { node, ws } = await openIncrementSocket();
    node.transport.failWrites = 1;
    const closed = once(ws, 'close');
    ws.send('increment');
    const [code] = (await closed) as [number];
    // 1006: the connection was cut without a close frame (the node hung up, as on a dead node).
    expect(code).toBe(1006);
  });
});

describe('restore: a node that lost its sessions (restarted before the proxy noticed)', () => {
  /** node-1 with 3 acknowledged writes of KEY, and node-1 again as a new process (empty store, same replica store). */
  async function restartedNode() {
    const before = await startNode({ restore: true });
    for (let i = 0; i < 3; i++) expect((await post(before.app, '/increment')).statusCode).toBe(200);
    await before.app.close();
    await before.replicator.close();
    const after = await startNode({ restore: true, transport: before.transport });
    close = async () => {
      await after.close();
      await before.transport.store.close();
    };
    return after;
  }

  it('restores the session from its replica on its next request: the counter goes on', async () => {
    const node = await restartedNode();
    expect(node.store.peek(KEY)).toBeUndefined();

    const response = await post(node.app, '/increment');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ count: 4 });
    // Read, installed, ownership confirmed.
    expect(node.replicator.stats().readRequests).toBe(2);
    expect(node.restorer.restored).toBe(1);
    const replica = await node.replicas.read(KEY);
    expect(replica?.data).toMatchObject({ values: { count: 4 } });
    expect(replica?.version).toBe(node.store.peek(KEY)?.version);
  });

  it('concurrent requests of the missing session share one read', async () => {
    const node = await restartedNode();
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => node.app.inject({ method: 'GET', url: '/count', headers })),
    );
    expect(answers.map((answer) => answer.json())).toEqual(Array(5).fill({ count: 3 }));
    expect(node.replicator.stats().readRequests).toBe(2);
    expect(node.restorer.restored).toBe(1);
  });

  it('does not read for an id the proxy minted for this request (x-stickylb-session-new)', async () => {
    const node = await startNode({ restore: true });
    close = node.close;
    const response = await node.app.inject({
      method: 'POST',
      url: '/increment',
      headers: { ...headers, [SESSION_NEW_HEADER]: '1' },
    });
    expect(response.json()).toEqual({ count: 1 });
    expect(node.replicator.stats().readRequests).toBe(0);
    // A session the store holds is never read either.
    await post(node.app, '/increment');
    expect(node.replicator.stats().readRequests).toBe(0);
  });

  it('never takes a session another node owns (a failover moved it there)', async () => {
    const node = await startNode({ restore: true });
    close = node.close;
    await node.replicas.write('node-2', [
      { key: KEY, version: 7, lastAccessAt: Date.now(), data: { values: { count: 7 } } },
    ]);
    const response = await node.app.inject({ method: 'GET', url: '/count', headers });
    expect(response.json()).toEqual({ count: 0 });
    expect(node.replicator.stats().readRequests).toBe(1);
    expect(node.restorer.restored).toBe(0);
    expect(await node.replicas.read(KEY)).toMatchObject({ owner: 'node-2', version: 7 });
  });

  it('answers 503 when the replica store cannot be read, and starts nothing over', async () => {
    const node = await restartedNode();
    node.transport.failReads = 1;
    const failed = await post(node.app, '/increment');
    expect(failed.statusCode).toBe(503);
    // This bare app answers with Fastify's default error body; the demo app's is `{error, message}`.
    expect(failed.json().message).toMatch(/replica store did not answer/);
    expect(node.store.peek(KEY)).toBeUndefined();
    expect((await node.replicas.read(KEY))?.data).toMatchObject({ values: { count: 3 } });

    // A request that never uses the session is served all the same.
    node.transport.failReads = 1;
    const page = await node.app.inject({ method: 'GET', url: '/static', headers });
    expect(page.statusCode).toBe(200);

    // The store answers again: the session is back, nothing lost.
    expect((await post(node.app, '/increment')).json()).toEqual({ count: 4 });
  });
});

describe('SessionRestorer', () => {
  async function nodeWithReplica() {
    const node = await startNode({ restore: true });
    close = node.close;
    await node.replicas.write('node-1', [
      { key: KEY, version: 4, lastAccessAt: Date.now(), data: { values: { count: 4 } } },
    ]);
    return node;
  }

  it('drops its copy when a move took the session away while the read was out', async () => {
    const node = await nodeWithReplica();
    // Between the read and the confirming read, an evacuate moves the session to node-2 (its
    // eviction of node-1's copy found nothing yet).
    node.transport.beforeRead = async (n) => {
      if (n === 2) await node.replicas.transfer(KEY, 'node-1', 'node-2');
    };
    await node.restorer.restore(KEY);
    expect(node.store.peek(KEY)).toBeUndefined();
    expect(node.restorer.restored).toBe(0);
    expect(await node.replicas.read(KEY)).toMatchObject({ owner: 'node-2', version: 4 });
  });

  it('installs the session as accessed now: an eviction at maxSessions during the restore takes another', async () => {
    const node = await startNode({ restore: true, maxSessions: 2 });
    close = node.close;
    // Idle half a minute in the replica store; another session was used here since.
    await node.replicas.write('node-1', [
      { key: KEY, version: 4, lastAccessAt: Date.now() - 30_000, data: { values: { count: 4 } } },
    ]);
    node.store.create('otherkey', { values: {} });
    node.transport.beforeRead = async (n) => {
      if (n === 2) node.store.create('thirdkey', { values: {} });
    };
    await node.restorer.restore(KEY);
    expect(node.store.peek(KEY)?.value).toMatchObject({ values: { count: 4 } });
    expect(node.store.peek('otherkey')).toBeUndefined();
    expect(node.restorer.restored).toBe(1);
    expect(await node.replicas.read(KEY)).toMatchObject({ owner: 'node-1', version: 4 });
  });

  it('drops its copy and fails when ownership cannot be confirmed', async () => {
    const node = await nodeWithReplica();
    node.transport.beforeRead = async (n) => {
      if (n === 2) node.transport.failReads = 1;
    };
    await expect(node.restorer.restore(KEY)).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
    expect(node.store.peek(KEY)).toBeUndefined();
    await node.restorer.restore(KEY);
    expect(node.store.peek(KEY)?.value).toMatchObject({ values: { count: 4 } });
  });

  it('reads a key with nothing to restore once per 30 s, not on every request', async () => {
    let now = Date.now();
    const node = await startNode({ restore: true, now: () => now });
    close = node.close;
    const countOnce = async (): Promise<void> => {
      const response = await node.app.inject({ method: 'GET', url: '/count', headers });
      expect(response.json()).toEqual({ count: 0 });
      // What a read-only request leaves: the session it created stays local until it expires.
      node.store.delete(KEY);
    };
    for (let i = 0; i < 3; i++) await countOnce();
    expect(node.replicator.stats().readRequests).toBe(1);
    now += 30_000;
    await countOnce();
    expect(node.replicator.stats().readRequests).toBe(2);
  });

  it('holds the session’s other requests until its restore is done: a write meanwhile is kept', async () => {
    // Async writes wait in the queue (no flush during the test): the replicator then vouches
    // for nothing it has not sent.
    const node = await startNode({ restore: true, mode: 'async', flushIntervalMs: 60_000 });
    close = node.close;
    await node.replicas.write('node-1', [
      { key: KEY, version: 4, lastAccessAt: Date.now(), data: { values: { count: 4 } } },
    ]);
    // While the confirming read is out (the copy already in the store), request B arrives.
    let second: Promise<{ json: () => unknown }> | undefined;
    node.transport.beforeRead = async (n) => {
      if (n !== 2) return;
      second = post(node.app, '/increment');
      await new Promise((resolve) => setTimeout(resolve, 20));
    };
    const first = await post(node.app, '/increment');
    const counts = [first.json(), (await second)?.json()].map(
      (answer) => (answer as { count: number }).count,
    );
    expect(counts.sort()).toEqual([5, 6]);
    expect(node.store.peek(KEY)?.value).toMatchObject({ values: { count: 6 } });
    await node.replicator.flush();
    expect(await node.replicas.read(KEY)).toMatchObject({ version: 6, data: { values: { count: 6 } } });
  });
});

describe('Replicator re-seed', () => {
  it('a store restarted again while it is being re-seeded is re-seeded too', async () => {
    const transport = new TestTransport();
    const seeded: string[] = [];
    let releaseFirst: () => void = () => undefined;
    const replicator = new Replicator({
      nodeId: 'node-1',
      mode: 'sync',
      flushIntervalMs: 10,
      touchIntervalMs: 20,
      logger: createSilentLogger(),
      transport,
      onEpochChange: async (epoch) => {
        // The first seed is slow: the store restarts again before it ends.
        if (seeded.length === 0) await new Promise<void>((resolve) => (releaseFirst = resolve));
        seeded.push(epoch);
        await replicator.seed(['only-read'], (key) => ({
          key,
          version: 2,
          data: {},
          lastAccessAt: Date.now(),
        }));
      },
    });
    close = async () => {
      await replicator.close();
      await transport.store.close();
    };
    await replicator.checkEpoch();
    transport.store = new MemoryReplicaStore({ idleTimeoutMs: 60_000 });
    await replicator.checkEpoch();
    const third = new MemoryReplicaStore({ idleTimeoutMs: 60_000 });
    transport.store = third;
    await replicator.checkEpoch();
    releaseFirst();
    await expect.poll(() => seeded).toContain(third.epoch);
    await expect.poll(() => third.read('only-read')).toMatchObject({ version: 2 });
  });
});

describe('Replicator.seed after a proxy restart', () => {
  /** 501 sessions (two batches); `k500`, the one in the second batch, at count 99. */
  async function seeding() {
    const store = new SessionStore<CompartmentData>({ idleTimeoutMs: 60_000 });
    const transport = new TestTransport();
    const replicator = new Replicator({
      nodeId: 'node-1',
      mode: 'sync',
      flushIntervalMs: 10,
      logger: createSilentLogger(),
      transport,
    });
    close = async () => {
      await replicator.close();
      await transport.store.close();
    };
    const ids = Array.from({ length: 501 }, (_, i) => `k${i}`);
    for (const id of ids) store.create(id, { values: { count: 0 } });
    store.update('k500', (data) => ({ values: { ...data.values, count: 99 } }));
    let release: () => void = () => undefined;
    transport.holdWrites = new Promise((resolve) => (release = resolve));
    const seeded = replicator.seed(ids, readSession(store));
    // The first batch (500 sessions) is on the wire.
    await expect.poll(() => transport.writesStarted).toBe(1);
    return { store, transport, seeded, release };
  }

  it('a session destroyed while an earlier batch is in flight is not brought back', async () => {
    const { store, transport, seeded, release } = await seeding();
    store.delete('k500');
    release();
    await expect(seeded).resolves.toMatchObject({ written: 500 });
    expect(await transport.store.read('k500')).toBeUndefined();
  });

  it('a session written again meanwhile goes as it is then', async () => {
    const { store, transport, seeded, release } = await seeding();
    store.update('k500', () => ({ values: { count: 100 } }));
    release();
    await expect(seeded).resolves.toMatchObject({ written: 501 });
    expect(await transport.store.read('k500')).toMatchObject({
      version: 3,
      data: { values: { count: 100 } },
    });
  });

  it('reads a session as it is when its batch is built, without touching it', () => {
    const store = new SessionStore<CompartmentData>({ idleTimeoutMs: 60_000 });
    store.create('kept', { values: { n: 1 } });
    const read = readSession(store);
    store.update('kept', () => ({ values: { n: 2 } }));
    expect(read('kept')).toMatchObject({ key: 'kept', version: 2, data: { values: { n: 2 } } });
    expect(read('gone')).toBeUndefined();
  });
});
