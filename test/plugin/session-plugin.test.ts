import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sessionPlugin, type SessionWrite } from '../../src/plugin/index.js';
import { SESSION_HEADER, SESSION_USED_HEADER } from '../../src/protocol.js';
import {
  getValue,
  SessionStore,
  setValue,
  type CompartmentData,
  type JsonValue,
} from '../../src/session/index.js';

const SESSION_ID = 'k3y0fth1ss3ss10n.r1.m4c';
const SESSION_KEY = 'k3y0fth1ss3ss10n';
const withSession = (id = SESSION_ID) => ({ [SESSION_HEADER]: id });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A minimal app that knows nothing of the proxy, only `request.session`. */
async function buildApp(
  store: SessionStore<CompartmentData>,
  onWrite?: (write: SessionWrite) => Promise<void>,
): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(sessionPlugin, { store, ...(onWrite ? { onWrite } : {}) });
  app.get('/untouched', async () => ({ ok: true }));
  app.get('/identity', async (request) => ({
    id: request.session.id ?? null,
    key: request.session.key ?? null,
  }));
  app.get('/read', async (request) => ({ value: request.session.get('x') ?? null }));
  app.get('/version', async (request) => ({ version: request.session.version }));
  app.get('/data', async (request) => request.session.data);
  app.post<{ Body: { value: JsonValue } }>('/write', async (request) => {
    await request.session.set('x', request.body.value);
    return { version: request.session.version };
  });
  app.post<{ Querystring: { delayMs?: string } }>('/increment', async (request) => {
    const count = await request.session.update(async (data) => {
      const current = getValue(data, '', 'count');
      await sleep(Number(request.query.delayMs ?? 0));
      const next = (typeof current === 'number' ? current : 0) + 1;
      setValue(data, '', 'count', next);
      return next;
    });
    return { count };
  });
  app.post('/fail', async (request) => {
    await request.session.update((data) => {
      setValue(data, '', 'x', 'half-written');
      throw new Error('boom');
    });
  });
  app.post<{ Body: { path: string } }>('/enter', async (request) => {
    await request.session.enter(request.body.path);
    return request.session.compartments();
  });
  app.post<{ Body: { path: string } }>('/leave', async (request) => {
    const existed = await request.session.leave(request.body.path);
    return { existed, compartments: request.session.compartments() };
  });
  app.post('/destroy', async (request) => ({ existed: request.session.destroy() }));
  return app;
}

describe('sessionPlugin', () => {
  let store: SessionStore<CompartmentData>;
  let app: FastifyInstance;

  beforeEach(async () => {
    store = new SessionStore<CompartmentData>({ idleTimeoutMs: 60_000 });
    app = await buildApp(store);
  });

  afterEach(async () => {
    await app.close();
    store.stop();
  });

  it('creates no session and sets no used-header for a request that never touches request.session', async () => {
    const response = await app.inject({ method: 'GET', url: '/untouched', headers: withSession() });
    expect(response.statusCode).toBe(200);
    expect(store.size).toBe(0);
    expect(response.headers[SESSION_USED_HEADER]).toBeUndefined();
  });

  it('exposes the client-facing id and the store key without creating the session', async () => {
    const response = await app.inject({ method: 'GET', url: '/identity', headers: withSession() });
    expect(response.json()).toEqual({ id: SESSION_ID, key: SESSION_KEY });
    expect(store.size).toBe(0);
    expect(response.headers[SESSION_USED_HEADER]).toBeUndefined();
  });

  it('materialises the session on a read, keyed by the random part of the id', async () => {
    const response = await app.inject({ method: 'GET', url: '/read', headers: withSession() });
    expect(response.json()).toEqual({ value: null });
    expect(store.has(SESSION_KEY)).toBe(true);
    expect(store.size).toBe(1);
  });

  it.each([
    ['a read', 'GET', '/read'],
    ['a write', 'POST', '/increment'],
    ['a version lookup', 'GET', '/version'],
  ] as const)('sets the used-header after %s', async (_name, method, url) => {
    const response = await app.inject({ method, url, headers: withSession() });
    expect(response.statusCode).toBe(200);
    expect(response.headers[SESSION_USED_HEADER]).toMatch(/^[1-9]\d*$/);
  });

  it('sends the session’s version after the request as the used-header value', async () => {
    await app.inject({ method: 'POST', url: '/increment', headers: withSession() });
    const write = await app.inject({ method: 'POST', url: '/increment', headers: withSession() });
    const read = await app.inject({ method: 'GET', url: '/version', headers: withSession() });
    expect(Number(write.headers[SESSION_USED_HEADER])).toBe(Number(read.headers[SESSION_USED_HEADER]));
    expect(Number(read.headers[SESSION_USED_HEADER])).toBe(read.json().version);
  });

  it('finds the same session when the id carries another route (after a failover)', async () => {
    await app.inject({ method: 'POST', url: '/write', headers: withSession(), payload: { value: 'kept' } });
    const response = await app.inject({
      method: 'GET',
      url: '/read',
      headers: withSession(`${SESSION_KEY}.r2.0th3rm4c`),
    });
    expect(response.json()).toEqual({ value: 'kept' });
  });

  it('bumps the version on every write', async () => {
    const first = await app.inject({
      method: 'POST',
      url: '/write',
      headers: withSession(),
      payload: { value: 1 },
    });
    const second = await app.inject({
      method: 'POST',
      url: '/write',
      headers: withSession(),
      payload: { value: 2 },
    });
    expect(second.json<{ version: number }>().version).toBe(first.json<{ version: number }>().version + 1);
  });

  it('keeps both of two interleaved async updates of one session', async () => {
    // The slow update reads the count, then waits while the fast one runs: without
    // per-session serialisation the slow one would write back a stale count.
    const [slow, fast] = await Promise.all([
      app.inject({ method: 'POST', url: '/increment?delayMs=30', headers: withSession() }),
      app.inject({ method: 'POST', url: '/increment?delayMs=0', headers: withSession() }),
    ]);
    expect([slow.json<{ count: number }>().count, fast.json<{ count: number }>().count].sort()).toEqual([
      1, 2,
    ]);
    expect(store.peek(SESSION_KEY)?.value.values.count).toBe(2);
  });

  it('stores nothing from an update whose function throws', async () => {
    await app.inject({ method: 'POST', url: '/write', headers: withSession(), payload: { value: 'before' } });
    const version = store.peek(SESSION_KEY)?.version;
    const response = await app.inject({ method: 'POST', url: '/fail', headers: withSession() });
    expect(response.statusCode).toBe(500);
    expect(store.peek(SESSION_KEY)?.value.values.x).toBe('before');
    expect(store.peek(SESSION_KEY)?.version).toBe(version);
  });

  it('returns a copy from data, so changing it changes nothing stored', async () => {
    await app.inject({ method: 'POST', url: '/write', headers: withSession(), payload: { value: { a: 1 } } });
    const response = await app.inject({ method: 'GET', url: '/data', headers: withSession() });
    const data = response.json<CompartmentData>();
    expect(data.values).toEqual({ x: { a: 1 } });
    expect(store.peek(SESSION_KEY)?.value).not.toBe(data);
  });

  it('enters a nested compartment with its parents', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/enter',
      headers: withSession(),
      payload: { path: 'checkout/shipping' },
    });
    const paths = response.json<Array<{ path: string }>>().map((compartment) => compartment.path);
    expect(paths).toEqual(expect.arrayContaining(['checkout', 'checkout/shipping']));
  });

  it('leaves a compartment together with its children', async () => {
    await app.inject({
      method: 'POST',
      url: '/enter',
      headers: withSession(),
      payload: { path: 'checkout/shipping' },
    });
    const response = await app.inject({
      method: 'POST',
      url: '/leave',
      headers: withSession(),
      payload: { path: 'checkout' },
    });
    const body = response.json<{ existed: boolean; compartments: Array<{ path: string }> }>();
    expect(body.existed).toBe(true);
    expect(body.compartments.map((compartment) => compartment.path)).not.toEqual(
      expect.arrayContaining([expect.stringMatching(/^checkout/)]),
    );
  });

  it('deletes the session on destroy and does not report it used', async () => {
    await app.inject({ method: 'POST', url: '/increment', headers: withSession() });
    const response = await app.inject({ method: 'POST', url: '/destroy', headers: withSession() });
    expect(response.json()).toEqual({ existed: true });
    expect(store.has(SESSION_KEY)).toBe(false);
    expect(response.headers[SESSION_USED_HEADER]).toBeUndefined();
  });

  it.each([
    ['missing', undefined, 'no session id: requests reach nodes through the stickylb proxy'],
    ['empty', '', 'no session id: requests reach nodes through the stickylb proxy'],
    ['containing spaces', 'abc def', 'malformed session id header'],
    ['starting with a dot', '.r1.mac', 'malformed session id header'],
    ['longer than 256 characters', 'a'.repeat(257), 'malformed session id header'],
  ])('answers 400 and creates nothing when the session id is %s', async (_name, id, message) => {
    const headers = id === undefined ? {} : { [SESSION_HEADER]: id };
    const response = await app.inject({ method: 'GET', url: '/read', headers });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'SLB_BAD_REQUEST', message });
    expect(store.size).toBe(0);
  });

  it('still serves routes that do not use the session when the id is missing', async () => {
    const response = await app.inject({ method: 'GET', url: '/identity' });
    expect(response.json()).toEqual({ id: null, key: null });
  });
});

describe('sessionPlugin onWrite', () => {
  let store: SessionStore<CompartmentData>;
  let app: FastifyInstance | undefined;

  beforeEach(() => {
    store = new SessionStore<CompartmentData>({ idleTimeoutMs: 60_000 });
  });

  afterEach(async () => {
    await app?.close();
    store.stop();
  });

  it('awaits onWrite with the written entry before the response leaves', async () => {
    const writes: SessionWrite[] = [];
    app = await buildApp(store, async (write) => {
      await sleep(5);
      writes.push(write);
    });
    const response = await app.inject({ method: 'POST', url: '/increment', headers: withSession() });
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({ kind: 'updated', key: SESSION_KEY });
    expect(writes[0]?.kind === 'updated' && writes[0].entry.value.values.count).toBe(1);
    expect(response.json()).toEqual({ count: 1 });
  });

  it('does not call onWrite for a request that only reads', async () => {
    const writes: SessionWrite[] = [];
    app = await buildApp(store, async (write) => {
      writes.push(write);
    });
    await app.inject({ method: 'GET', url: '/read', headers: withSession() });
    expect(writes).toEqual([]);
  });

  it('reports a destroy to onWrite as a deletion', async () => {
    const writes: SessionWrite[] = [];
    app = await buildApp(store, async (write) => {
      writes.push(write);
    });
    await app.inject({ method: 'POST', url: '/destroy', headers: withSession() });
    expect(writes).toEqual([{ kind: 'deleted', key: SESSION_KEY }]);
  });

  it('answers with the error when onWrite rejects, calling it once', async () => {
    let calls = 0;
    app = await buildApp(store, async () => {
      calls += 1;
      throw Object.assign(new Error('replica store unreachable'), { statusCode: 503 });
    });
    const response = await app.inject({ method: 'POST', url: '/increment', headers: withSession() });
    expect(response.statusCode).toBe(503);
    expect(calls).toBe(1);
  });
});
