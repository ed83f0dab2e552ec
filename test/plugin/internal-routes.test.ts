import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildDemoApp } from '../../backends/demo/index.js';
import { SECRET_HEADER, SESSION_HEADER } from '../../src/protocol.js';
import { SessionStore, type CompartmentData } from '../../src/session/index.js';

const SECRET = 'a-replication-secret-of-some-length';
let app: FastifyInstance;
let store: SessionStore<CompartmentData>;

beforeEach(async () => {
  store = new SessionStore<CompartmentData>({ idleTimeoutMs: 60_000 });
  app = await buildDemoApp({ nodeId: 'node-1', store, internalSecret: SECRET });
});
afterEach(async () => {
  await app.close();
});

const session = (key: string, version: number, count: number) => ({
  key,
  version,
  data: { values: { count }, children: {} },
  lastAccessAt: Date.now(),
});

describe('node-internal routes', () => {
  it.each([
    ['POST', '/_stickylb/sessions/install', { sessions: [] }],
    ['POST', '/_stickylb/sessions/evict', { keys: [] }],
    ['GET', '/_stickylb/metrics', undefined],
  ] as const)('%s %s refuses a request without the secret', async (method, url, payload) => {
    for (const headers of [{}, { [SECRET_HEADER]: 'wrong' }]) {
      const response = await app.inject({ method, url, headers, ...(payload ? { payload } : {}) });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ error: 'SLB_UNAUTHORIZED' });
    }
  });

  it('installs a moved-in session that the app then serves, and refuses a stale version', async () => {
    const install = (version: number, count: number) =>
      app.inject({
        method: 'POST',
        url: '/_stickylb/sessions/install',
        headers: { [SECRET_HEADER]: SECRET },
        payload: { sessions: [session('movedkey', version, count)] },
      });
    expect((await install(5, 7)).json()).toEqual({ installed: 1, stale: 0 });
    expect((await install(4, 1)).json()).toEqual({ installed: 0, stale: 1 });
    const read = await app.inject({
      method: 'GET',
      url: '/api/counter',
      headers: { [SESSION_HEADER]: 'movedkey.r.m' },
    });
    expect(read.json().count).toBe(7);
  });

  it('evicts sessions that moved away', async () => {
    store.create('gone', { values: { count: 1 }, children: {} });
    const response = await app.inject({
      method: 'POST',
      url: '/_stickylb/sessions/evict',
      headers: { [SECRET_HEADER]: SECRET },
      payload: { keys: ['gone', 'never-here'] },
    });
    expect(response.json()).toEqual({ evicted: 1 });
    expect(store.has('gone')).toBe(false);
  });

  it('reports store metrics and the biggest compartments', async () => {
    store.create('s1', { values: {}, children: { cart: { values: { items: ['a', 'b'] }, children: {} } } });
    const response = await app.inject({
      method: 'GET',
      url: '/_stickylb/metrics',
      headers: { [SECRET_HEADER]: SECRET },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json().store.total).toBe(1);
    expect(response.json().compartments[0]).toMatchObject({ path: 'cart', sessions: 1 });
  });
});
