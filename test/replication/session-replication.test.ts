import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createSilentLogger } from '../../src/log.js';
import { sessionPlugin } from '../../src/plugin/index.js';
import { SESSION_HEADER } from '../../src/protocol.js';
import {
  MemoryReplicaStore,
  replicateSessions,
  Replicator,
  StoreReplicaTransport,
} from '../../src/replication/index.js';
import { getValue, SessionStore, setValue, type CompartmentData } from '../../src/session/index.js';

const KEY = 'r3cr34t3ds3ss10n';
const headers = { [SESSION_HEADER]: `${KEY}.r1.m4c` };

/**
 * A node as the demo server wires it: the session plugin's writes and the store's own
 * touches and evictions replicated (sync) into a real memory replica store.
 */
async function startNode(options: { maxSessions?: number } = {}) {
  const store = new SessionStore<CompartmentData>({
    idleTimeoutMs: 60_000,
    activeWindowMs: 0,
    ...(options.maxSessions !== undefined ? { maxSessions: options.maxSessions } : {}),
  });
  const replicas = new MemoryReplicaStore({ idleTimeoutMs: 60_000 });
  const replicator = new Replicator({
    nodeId: 'node-1',
    mode: 'sync',
    flushIntervalMs: 10,
    logger: createSilentLogger(),
    transport: new StoreReplicaTransport(replicas),
  });
  const app = Fastify();
  await app.register(sessionPlugin, {
    store,
    onWrite: replicateSessions(store, replicator, createSilentLogger()),
  });
  app.post('/increment', async (request) => {
    const count = await request.session.update((data) => {
      const next = ((getValue(data, '', 'count') as number | undefined) ?? 0) + 1;
      setValue(data, '', 'count', next);
      return next;
    });
    return { count };
  });
  // "Start again": the usual log-out-and-in pattern, one request.
  app.post('/restart', async (request) => {
    request.session.destroy();
    await request.session.set('cart', 'fresh');
    return { version: request.session.version };
  });
  const close = async (): Promise<void> => {
    await app.close();
    await replicator.close();
    await replicas.close();
  };
  return { app, store, replicas, close };
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
    const again = await post(node.app, '/increment');
    expect(again.json()).toEqual({ count: 1 });
    const replica = await node.replicas.read(KEY);
    expect(replica?.data).toMatchObject({ values: { count: 1 } });
    expect(replica?.version).toBe(node.store.peek(KEY)?.version);
  });
});
