import { Script } from 'node:vm';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildDemoApp } from '../../backends/demo/index.js';
import { SESSION_HEADER, SESSION_USED_HEADER } from '../../src/protocol.js';
import { SessionStore, type CompartmentData } from '../../src/session/index.js';

const NODE_ID = 'node-7';
const ALICE = 'al1ce4l1ce4l1ce4.r7.m4c';
const BOB = 'b0bb0bb0bb0bb0bb.r7.m4c';

type Method = 'GET' | 'POST' | 'DELETE';

interface View {
  sessionId: string;
  node: string;
  version: number;
  count: number;
  cart: Array<{ item: string; quantity: number }>;
  checkout: {
    step: string;
    shipping: Record<string, unknown> | null;
    payment: Record<string, unknown> | null;
  };
  lastOrder: Record<string, unknown> | null;
  compartments: Array<{ path: string; bytes: number }>;
  order?: Record<string, unknown>;
}

const SHIPPING = { name: 'Ada Lovelace', street: '12 St James Sq', city: 'London', postcode: 'SW1Y 4JH' };
const PAYMENT = { method: 'card', holder: 'Ada Lovelace' };

function pathsOf(view: View): string[] {
  return view.compartments.map((compartment) => compartment.path).filter((path) => path !== '');
}

describe('demo app', () => {
  let store: SessionStore<CompartmentData>;
  let app: FastifyInstance;

  beforeEach(async () => {
    store = new SessionStore<CompartmentData>({ idleTimeoutMs: 60_000 });
    app = await buildDemoApp({ nodeId: NODE_ID, store });
  });

  afterEach(async () => {
    await app.close();
    store.stop();
  });

  function send(
    method: Method,
    url: string,
    payload?: object,
    session = ALICE,
  ): Promise<LightMyRequestResponse> {
    return app.inject({
      method,
      url,
      headers: { [SESSION_HEADER]: session },
      ...(payload ? { payload } : {}),
    });
  }

  async function view(method: Method, url: string, payload?: object): Promise<View> {
    const response = await send(method, url, payload);
    expect(response.statusCode, response.body).toBe(200);
    return response.json<View>();
  }

  async function fillCart(): Promise<void> {
    await view('POST', '/api/cart', { item: 'Coffee beans' });
  }

  describe('GET /health', () => {
    it('answers ok with the node id', async () => {
      const response = await send('GET', '/health');
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ status: 'ok', node: NODE_ID });
    });

    it('creates no session and sets no used-header', async () => {
      const response = await send('GET', '/health');
      expect(store.size).toBe(0);
      expect(response.headers[SESSION_USED_HEADER]).toBeUndefined();
    });
  });

  describe('counter', () => {
    it('increments per POST and answers the contract fields', async () => {
      const counts = [];
      for (let i = 0; i < 3; i += 1) counts.push((await send('POST', '/api/counter')).json());
      expect(counts).toEqual([1, 2, 3].map((count) => ({ sessionId: ALICE, node: NODE_ID, count })));
    });

    it('reads the count with GET without changing it', async () => {
      await send('POST', '/api/counter');
      await send('POST', '/api/counter');
      const response = await send('GET', '/api/counter');
      expect(response.json()).toEqual({ sessionId: ALICE, node: NODE_ID, count: 2 });
      expect((await send('GET', '/api/counter')).json()).toMatchObject({ count: 2 });
    });

    it('keeps sessions apart', async () => {
      await send('POST', '/api/counter', undefined, ALICE);
      await send('POST', '/api/counter', undefined, ALICE);
      const bob = await send('POST', '/api/counter', undefined, BOB);
      expect(bob.json()).toEqual({ sessionId: BOB, node: NODE_ID, count: 1 });
      expect((await send('GET', '/api/counter', undefined, ALICE)).json()).toMatchObject({ count: 2 });
    });

    it('reports the session used', async () => {
      const response = await send('GET', '/api/counter');
      expect(response.headers[SESSION_USED_HEADER]).toMatch(/^[1-9]\d*$/);
    });

    it('answers 400 JSON without a session id', async () => {
      const response = await app.inject({ method: 'POST', url: '/api/counter' });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toEqual({
        error: 'SLB_BAD_REQUEST',
        message: 'no session id: requests reach nodes through the stickylb proxy',
      });
    });
  });

  describe('GET /api/session', () => {
    it('answers sessionId, node, version and the compartment tree', async () => {
      await send('POST', '/api/counter');
      const response = await send('GET', '/api/session');
      const body = response.json<Record<string, unknown>>();
      expect(Object.keys(body).sort()).toEqual(['data', 'node', 'sessionId', 'version']);
      expect(body).toMatchObject({
        sessionId: ALICE,
        node: NODE_ID,
        data: { values: { count: 1 } },
      });
      expect(body.version).toEqual(expect.any(Number));
    });
  });

  describe('cart', () => {
    it('enters the cart compartment when the first item is added', async () => {
      const state = await view('POST', '/api/cart', { item: 'Croissant', quantity: 2 });
      expect(state.cart).toEqual([{ item: 'Croissant', quantity: 2 }]);
      expect(pathsOf(state)).toEqual(['cart']);
    });

    it('adds up the quantity of an item added twice', async () => {
      await view('POST', '/api/cart', { item: 'Croissant' });
      const state = await view('POST', '/api/cart', { item: 'Croissant', quantity: 3 });
      expect(state.cart).toEqual([{ item: 'Croissant', quantity: 4 }]);
    });

    it('removes an item whose name needs URL encoding', async () => {
      await view('POST', '/api/cart', { item: 'A/B 50%' });
      const state = await view('DELETE', `/api/cart/items/${encodeURIComponent('A/B 50%')}`);
      expect(state.cart).toEqual([]);
    });

    it('removes one item and keeps the rest', async () => {
      await view('POST', '/api/cart', { item: 'Croissant' });
      await view('POST', '/api/cart', { item: 'Green tea' });
      const state = await view('DELETE', '/api/cart/items/Croissant');
      expect(state.cart).toEqual([{ item: 'Green tea', quantity: 1 }]);
    });

    it('leaves the cart compartment when its last item is removed', async () => {
      await view('POST', '/api/cart', { item: 'Green tea' });
      const state = await view('DELETE', `/api/cart/items/${encodeURIComponent('Green tea')}`);
      expect(state.cart).toEqual([]);
      expect(pathsOf(state)).toEqual([]);
    });

    it.each(['.', ' .. '])('refuses an item named %j, which no URL could remove', async (item) => {
      const response = await send('POST', '/api/cart', { item });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({
        error: 'SLB_BAD_REQUEST',
        message: 'an item cannot be named "." or ".."',
      });
      expect((await view('GET', '/api/shop')).cart).toEqual([]);
    });

    it('answers 404 JSON for an item not in the cart', async () => {
      const response = await send('DELETE', '/api/cart/items/Nothing');
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ error: 'SLB_NOT_FOUND' });
    });

    it('empties the cart and cancels the checkout on DELETE /api/cart', async () => {
      await fillCart();
      await view('POST', '/api/checkout/start');
      const state = await view('DELETE', '/api/cart');
      expect(state.cart).toEqual([]);
      expect(pathsOf(state)).toEqual([]);
    });
  });

  describe('checkout', () => {
    it('enters checkout/shipping on start', async () => {
      await fillCart();
      const state = await view('POST', '/api/checkout/start');
      expect(state.checkout.step).toBe('shipping');
      expect(pathsOf(state)).toEqual(expect.arrayContaining(['checkout', 'checkout/shipping']));
    });

    it('stores the shipping fields and enters checkout/payment', async () => {
      await fillCart();
      await view('POST', '/api/checkout/start');
      const state = await view('POST', '/api/checkout/shipping', SHIPPING);
      expect(state.checkout).toMatchObject({ step: 'payment', shipping: SHIPPING, payment: null });
      expect(pathsOf(state)).toContain('checkout/payment');
    });

    it('reaches review once payment is stored', async () => {
      await fillCart();
      await view('POST', '/api/checkout/shipping', SHIPPING);
      const state = await view('POST', '/api/checkout/payment', PAYMENT);
      expect(state.checkout).toMatchObject({ step: 'review', payment: PAYMENT });
    });

    it('places the order and leaves the cart and checkout compartments', async () => {
      await fillCart();
      await view('POST', '/api/checkout/shipping', SHIPPING);
      await view('POST', '/api/checkout/payment', PAYMENT);
      const state = await view('POST', '/api/checkout/complete');
      expect(state.order).toMatchObject({ quantity: 1, shipTo: 'Ada Lovelace, London', paidBy: 'card' });
      expect(state.lastOrder).toEqual(state.order);
      expect(state.checkout.step).toBe('cart');
      expect(pathsOf(state)).toEqual([]);
    });

    it.each([
      ['review', 'payment', ['checkout', 'checkout/payment', 'checkout/shipping']],
      ['payment', 'shipping', ['checkout', 'checkout/shipping']],
      ['shipping', 'cart', []],
    ])('goes back from %s to %s, leaving its compartment', async (from, to, paths) => {
      await fillCart();
      await view('POST', '/api/checkout/start');
      if (from !== 'shipping') await view('POST', '/api/checkout/shipping', SHIPPING);
      if (from === 'review') await view('POST', '/api/checkout/payment', PAYMENT);
      expect((await view('GET', '/api/shop')).checkout.step).toBe(from);
      const state = await view('POST', '/api/checkout/back');
      expect(state.checkout.step).toBe(to);
      expect(
        pathsOf(state)
          .filter((path) => path.startsWith('checkout'))
          .sort(),
      ).toEqual(paths);
    });

    it('leaves checkout with everything under it, keeping the cart', async () => {
      await fillCart();
      await view('POST', '/api/checkout/shipping', SHIPPING);
      const state = await view('POST', '/api/checkout/leave');
      expect(pathsOf(state)).toEqual(['cart']);
      expect(state.checkout).toEqual({ step: 'cart', shipping: null, payment: null });
    });

    it.each([
      ['start with an empty cart', '/api/checkout/start', undefined, false],
      ['payment before shipping', '/api/checkout/payment', PAYMENT, true],
      ['complete before payment', '/api/checkout/complete', undefined, true],
    ])('refuses to %s with 400 JSON and changes nothing', async (_name, url, payload, withCart) => {
      if (withCart) await fillCart();
      const before = await view('GET', '/api/shop');
      const response = await send('POST', url, payload);
      expect(response.statusCode).toBe(400);
      expect(response.json()).toEqual({ error: 'SLB_BAD_REQUEST', message: expect.any(String) });
      expect((await view('GET', '/api/shop')).version).toBe(before.version);
    });
  });

  describe('request validation', () => {
    it.each([
      ['malformed JSON', '/api/cart', '{"item": '],
      ['a missing item', '/api/cart', {}],
      ['a blank item', '/api/cart', { item: '   ' }],
      ['a zero quantity', '/api/cart', { item: 'Tea', quantity: 0 }],
      ['a too long item', '/api/cart', { item: 'x'.repeat(61) }],
      ['a missing shipping field', '/api/checkout/shipping', { ...SHIPPING, city: undefined }],
      ['an unknown payment method', '/api/checkout/payment', { ...PAYMENT, method: 'gold' }],
    ])('answers 400 JSON for %s', async (_name, url, payload) => {
      const response = await app.inject({
        method: 'POST',
        url,
        headers: { [SESSION_HEADER]: ALICE, 'content-type': 'application/json' },
        payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
      });
      expect(response.statusCode).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.json()).toEqual({ error: 'SLB_BAD_REQUEST', message: expect.any(String) });
    });

    it('answers 413 JSON for a body over 1 MiB', async () => {
      const response = await send('POST', '/api/cart', { item: 'Tea', padding: 'x'.repeat(1_100_000) });
      expect(response.statusCode).toBe(413);
      expect(response.json()).toMatchObject({ error: 'SLB_BODY_TOO_LARGE' });
    });
  });

  describe('not found', () => {
    it.each(['/nope', '/api/counter/extra', '/_stickylb/replicate'])(
      'answers 404 JSON for %s',
      async (url) => {
        const response = await send('GET', url);
        expect(response.statusCode).toBe(404);
        expect(response.json()).toEqual({ error: 'SLB_NOT_FOUND', message: `no route GET ${url}` });
      },
    );
  });

  describe('GET /ws without an upgrade', () => {
    it('answers 426 JSON', async () => {
      const response = await send('GET', '/ws');
      expect(response.statusCode).toBe(426);
      expect(response.json()).toMatchObject({ error: 'SLB_BAD_REQUEST' });
    });
  });

  describe('page', () => {
    it('serves HTML naming the node, without creating a session', async () => {
      const response = await send('GET', '/');
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/html/);
      expect(response.body).toContain(NODE_ID);
      expect(store.size).toBe(0);
    });

    it('loads its script from a relative URL under a policy that forbids inline script', async () => {
      const response = await send('GET', '/');
      expect(response.body).toContain('<script src="assets/demo.js"');
      expect(response.headers['content-security-policy']).toContain("default-src 'self'");
    });

    it('serves a script that parses', async () => {
      const response = await send('GET', '/assets/demo.js');
      expect(response.headers['content-type']).toMatch(/^text\/javascript/);
      expect(() => new Script(response.body)).not.toThrow();
    });

    it('escapes the node id in the HTML', async () => {
      const other = await buildDemoApp({ nodeId: '<b>x</b>' });
      try {
        const response = await other.inject({ method: 'GET', url: '/' });
        expect(response.body).not.toContain('<b>x</b>');
      } finally {
        await other.close();
      }
    });
  });
});
