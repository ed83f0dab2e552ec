import { timingSafeEqual } from 'node:crypto';
import type * as NodeCrypto from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildAdminServer, isTokenValid } from '../../src/admin/index.js';
import { createSilentLogger } from '../../src/log.js';
import { FakeControl } from './fake-control.js';
import { SseClient } from './sse-client.js';

// Wraps timingSafeEqual so a test can see the token check go through it.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof NodeCrypto>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

const TOKEN = 'a-long-admin-token-0123456789';

/** Every route of the admin listener, with what a valid request to it looks like. */
const ROUTES: Array<{ method: 'GET' | 'POST'; url: string; body?: unknown }> = [
  { method: 'GET', url: '/' },
  { method: 'GET', url: '/assets/dashboard.js' },
  { method: 'GET', url: '/assets/dashboard.css' },
  { method: 'GET', url: '/api/state' },
  { method: 'GET', url: '/api/history' },
  { method: 'GET', url: '/metrics' },
  { method: 'POST', url: '/api/nodes/node-1/drain' },
  { method: 'POST', url: '/api/nodes/node-1/undrain' },
  { method: 'POST', url: '/api/nodes/node-1/evacuate' },
  { method: 'POST', url: '/api/rebalance' },
  { method: 'POST', url: '/api/test-sessions', body: { count: 10 } },
  { method: 'POST', url: '/api/sweep' },
];

let control: FakeControl;
let app: FastifyInstance;
afterEach(async () => {
  await app?.close();
});

describe('admin listener with a token', () => {
  beforeEach(async () => {
    control = new FakeControl();
    app = await buildAdminServer({ control, token: TOKEN, logger: createSilentLogger() });
  });

  it.each(ROUTES)('refuses $method $url without the token', async ({ method, url, body }) => {
    const response = await app.inject({ method, url, ...(body ? { payload: body as object } : {}) });
    expect(response.statusCode).toBe(401);
    expect(response.json().error).toBe('SLB_UNAUTHORIZED');
  });

  it.each(ROUTES)('refuses $method $url with a wrong token', async ({ method, url, body }) => {
    const response = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${TOKEN}x` },
      ...(body ? { payload: body as object } : {}),
    });
    expect(response.statusCode).toBe(401);
  });

  it.each(ROUTES)('answers $method $url with the token in Authorization', async ({ method, url, body }) => {
    const response = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${TOKEN}` },
      ...(body ? { payload: body as object } : {}),
    });
    expect(response.statusCode).toBe(200);
  });

  it('refuses the event stream without the token, and streams with ?token=', async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const refused = await fetch(`${base}/api/events`);
    expect(refused.status).toBe(401);
    const stream = await SseClient.open(`${base}/api/events?token=${encodeURIComponent(TOKEN)}`);
    try {
      expect(stream.response.statusCode).toBe(200);
      expect(stream.response.headers['content-type']).toMatch(/^text\/event-stream/);
      await stream.waitFor((frame) => frame.event === 'state');
    } finally {
      stream.close();
    }
  });

  it('accepts a POST with the token in Authorization from any Origin (a reverse proxy rewrote Host)', async () => {
    // The browser's Origin names the public host; the proxy in front sent Host 127.0.0.1:8081.
    const response = await app.inject({
      method: 'POST',
      url: '/api/nodes/node-1/drain',
      headers: {
        host: '127.0.0.1:8081',
        origin: 'https://admin.example.com',
        'sec-fetch-site': 'same-origin',
        authorization: `Bearer ${TOKEN}`,
      },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ node: 'node-1', changed: true, state: 'draining' });
  });

  it('still refuses a cross-site POST whose token is in the query string', async () => {
    for (const headers of [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }]) {
      const response = await app.inject({
        method: 'POST',
        url: `/api/nodes/node-1/drain?token=${encodeURIComponent(TOKEN)}`,
        headers: { host: '127.0.0.1:8081', ...headers },
      });
      expect(response.statusCode).toBe(403);
      expect(response.json().error).toBe('SLB_FORBIDDEN');
    }
    expect(control.drain).not.toHaveBeenCalled();
  });

  it('never echoes a ?token= that is not the token, even when Authorization carries the right one', async () => {
    const response = await app.inject({
      url: '/?token=not-the-token',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(response.statusCode).toBe(200);
    expect(response.body).not.toContain('not-the-token');
    expect(response.body).not.toContain('?token=');
  });

  it('passes a token given as ?token= on to the page’s asset URLs', async () => {
    const response = await app.inject({ url: `/?token=${encodeURIComponent(TOKEN)}` });
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain(`/assets/dashboard.js?token=${TOKEN}`);
    expect(response.body).toContain(`/assets/dashboard.css?token=${TOKEN}`);
  });
});

describe('admin listener without a token', () => {
  beforeEach(async () => {
    control = new FakeControl();
    app = await buildAdminServer({ control, logger: createSilentLogger() });
  });

  it('never echoes a ?token= into the page when no token is configured', async () => {
    const response = await app.inject({ url: '/?token=%22%3E%3Cscript%3E' });
    expect(response.statusCode).toBe(200);
    expect(response.body).not.toContain('token=');
  });

  it.each([
    ['a foreign Origin', { origin: 'https://evil.example' }],
    ['an Origin on another port', { origin: 'http://localhost:9999' }],
    ['an opaque Origin', { origin: 'null' }],
    ['a malformed Origin', { origin: 'not a url' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
  ])('refuses a cross-site POST (%s) and changes nothing', async (_name, headers) => {
    for (const url of ['/api/nodes/node-1/drain', '/api/nodes/node-1/evacuate', '/api/rebalance']) {
      const response = await app.inject({
        method: 'POST',
        url,
        headers: { host: 'localhost:8081', ...headers },
      });
      expect(response.statusCode).toBe(403);
      expect(response.json().error).toBe('SLB_FORBIDDEN');
    }
    const sessions = await app.inject({
      method: 'POST',
      url: '/api/test-sessions',
      headers: { host: 'localhost:8081', ...headers },
      payload: { count: 10 },
    });
    expect(sessions.statusCode).toBe(403);
    expect(control.drain).not.toHaveBeenCalled();
    expect(control.evacuate).not.toHaveBeenCalled();
    expect(control.rebalance).not.toHaveBeenCalled();
    expect(control.createTestSessions).not.toHaveBeenCalled();
  });

  it('accepts a same-origin POST (the dashboard’s own fetch) and a header-less one (curl)', async () => {
    const sameOrigin = await app.inject({
      method: 'POST',
      url: '/api/nodes/node-1/drain',
      headers: { host: 'localhost:8081', origin: 'http://localhost:8081', 'sec-fetch-site': 'same-origin' },
    });
    expect(sameOrigin.statusCode).toBe(200);
    expect(sameOrigin.json()).toMatchObject({ node: 'node-1', changed: true, state: 'draining' });
    const curl = await app.inject({ method: 'POST', url: '/api/nodes/node-1/undrain' });
    expect(curl.json()).toMatchObject({ node: 'node-1', changed: true, state: 'up' });
  });

  it.each(['drain', 'undrain', 'evacuate'])('GET /api/nodes/:id/%s changes nothing', async (action) => {
    for (const method of ['GET', 'HEAD'] as const) {
      const response = await app.inject({ method, url: `/api/nodes/node-1/${action}` });
      expect(response.statusCode).toBe(404);
    }
    expect(control.drain).not.toHaveBeenCalled();
    expect(control.undrain).not.toHaveBeenCalled();
    expect(control.evacuate).not.toHaveBeenCalled();
  });

  it.each(['/api/rebalance', '/api/test-sessions?count=10', '/api/sweep'])(
    'GET %s changes nothing',
    async (url) => {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode).toBe(404);
      expect(control.rebalance).not.toHaveBeenCalled();
      expect(control.createTestSessions).not.toHaveBeenCalled();
      expect(control.sweep).not.toHaveBeenCalled();
    },
  );

  it('serves the page with headers that forbid framing and foreign scripts', async () => {
    const response = await app.inject({ url: '/' });
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(response.headers['content-security-policy']).toContain("script-src 'self'");
    expect(response.headers['referrer-policy']).toBe('no-referrer');
    expect(response.body).toContain('<script type="module" src="/assets/dashboard.js"></script>');
  });
});

describe('isTokenValid', () => {
  it.each([
    ['the right token', TOKEN, true],
    ['a shorter token', TOKEN.slice(0, 5), false],
    ['a longer token', `${TOKEN}-and-more`, false],
    ['a token differing in the last character', `${TOKEN.slice(0, -1)}X`, false],
    ['an empty token', '', false],
  ])('compares %s in constant time', (_name, given, expected) => {
    vi.mocked(timingSafeEqual).mockClear();
    expect(isTokenValid(given, TOKEN)).toBe(expected);
    // Whatever the lengths, one fixed-size comparison of two SHA-256 digests.
    expect(timingSafeEqual).toHaveBeenCalledTimes(1);
    const [a, b] = vi.mocked(timingSafeEqual).mock.calls[0] as [Buffer, Buffer];
    expect(a.length).toBe(32);
    expect(b.length).toBe(32);
  });

  it('refuses a missing token without comparing', () => {
    expect(isTokenValid(undefined, TOKEN)).toBe(false);
  });
});
