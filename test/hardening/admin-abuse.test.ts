import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildAdminServer, isLoopbackHost } from '../../src/admin/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createSilentLogger } from '../../src/log.js';
import { StickyLb } from '../../src/stickylb.js';
import { FakeControl } from '../admin/fake-control.js';
import { startFaultCluster, type FaultCluster } from './fault-cluster.js';
import { rawExchange } from './raw-client.js';

let app: FastifyInstance | undefined;
let cluster: FaultCluster | undefined;
afterEach(async () => {
  await app?.close();
  await cluster?.close();
  app = undefined;
  cluster = undefined;
});

const TOKEN = 'a-long-admin-token-0123456789';

describe('admin listener without a token: DNS rebinding', () => {
  it.each([
    ['GET', '/api/state'],
    ['GET', '/metrics'],
    ['GET', '/'],
    ['POST', '/api/nodes/node-1/drain'],
    ['POST', '/api/rebalance'],
  ] as const)('refuses %s %s for a Host that is not loopback, even "same-origin"', async (method, url) => {
    const control = new FakeControl();
    app = await buildAdminServer({ control, logger: createSilentLogger() });
    const response = await app.inject({
      method,
      url,
      headers: {
        host: 'rebound.example:8081',
        origin: 'http://rebound.example:8081',
        'sec-fetch-site': 'same-origin',
      },
    });
    expect(response.statusCode).toBe(403);
    expect(response.json().error).toBe('SLB_FORBIDDEN');
    expect(control.drain).not.toHaveBeenCalled();
    expect(control.rebalance).not.toHaveBeenCalled();
  });

  it.each(['localhost:8081', '127.0.0.1:8081', '127.0.0.2', '[::1]:8081'])(
    'serves a loopback Host %s',
    async (host) => {
      app = await buildAdminServer({ control: new FakeControl(), logger: createSilentLogger() });
      const response = await app.inject({ url: '/api/state', headers: { host } });
      expect(response.statusCode).toBe(200);
    },
  );

  it('with a token, any Host is served to whoever holds the token (off-loopback use)', async () => {
    app = await buildAdminServer({ control: new FakeControl(), token: TOKEN, logger: createSilentLogger() });
    const response = await app.inject({
      url: '/api/state',
      headers: { host: 'lb.internal.example:8081', authorization: `Bearer ${TOKEN}` },
    });
    expect(response.statusCode).toBe(200);
  });
});

describe('admin bind address without a token', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.10.0.1', true],
    ['::1', true],
    ['localhost', true],
    ['0.0.0.0', false],
    ['::', false],
    ['192.0.2.10', false],
    ['10.0.0.1', false],
    // Loopback in fact, refused all the same: a token is cheap, a wrong guess is not.
    ['::ffff:127.0.0.1', false],
    ['localhost.example.com', false],
    ['128.0.0.1', false],
  ])('isLoopbackHost(%s) is %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });

  it.each(['0.0.0.0', '::', '192.0.2.10'])(
    'refuses to start on %s with a message naming admin.token',
    (host) => {
      const config = parseConfig({
        admin: { listen: { host, port: 0 } },
        nodes: [{ id: 'node-1', url: 'http://127.0.0.1:1' }],
      });
      expect(() => new StickyLb(config, createSilentLogger())).toThrow(/admin\.token: is required/);
    },
  );

  it('refuses a reload (SIGHUP) that would expose the admin listener without a token, and keeps serving', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    const exposed = parseConfig({
      admin: { listen: { host: '0.0.0.0', port: 0 } },
      nodes: [{ id: 'node-1', url: c.node.url }],
    });
    expect(() => c.lb.reload(exposed)).toThrow(/admin\.token: is required/);
    expect((await fetch(`${c.adminUrl}/api/state`)).status).toBe(200);
  });
});

describe('admin listener: what its HTTP parser refuses', () => {
  // Real sockets: these never reach a route, so inject() cannot show them.
  it.each([
    [
      'a malformed percent-escape in the URL',
      'GET /api/%zz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
      400,
      'SLB_BAD_REQUEST',
    ],
    [
      'headers past the limit',
      `GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`,
      431,
      'SLB_HEADERS_TOO_LARGE',
    ],
    ['bytes that are not HTTP', 'HELLO THERE\r\n\r\n', 400, 'SLB_BAD_REQUEST'],
  ])('answers %s with our JSON error and stays up', async (_case, bytes, status, code) => {
    cluster = await startFaultCluster();
    const port = Number(new URL(cluster.adminUrl).port);
    const { response } = await rawExchange(port, bytes);
    expect(response?.status).toBe(status);
    expect(JSON.parse(response?.body ?? '{}')).toMatchObject({ error: code });
    expect((await fetch(`${cluster.adminUrl}/api/state`)).status).toBe(200);
  });
});
