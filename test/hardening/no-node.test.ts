import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../integration/harness.js';
import { startHardeningProxy, type HardeningProxy } from './proxy-fixture.js';
import { rawExchange, RawConnection } from './raw-client.js';

/*
 * No node to take a request: a fast JSON 503 with Retry-After, whether health checks have
 * noticed yet or not, and no connection left behind. And the keep-alive race: a node that
 * closes a pooled socket just as the proxy reuses it is not a failed node — the request is
 * replayed on a new connection, the client never sees an error, nothing fails over.
 */
const GET = (path: string, extra = ''): string =>
  `GET ${path} HTTP/1.1\r\nHost: lb.test\r\n${extra}Connection: close\r\n\r\n`;

function expectNoHealthyNode(response: ReturnType<typeof JSON.parse>, headers: Record<string, string>): void {
  expect(response).toEqual({ error: 'SLB_NO_HEALTHY_NODE', message: expect.any(String) });
  expect(headers['retry-after']).toBe('1');
  expect(headers['content-type']).toMatch(/^application\/json/);
}

describe('all nodes down', () => {
  let proxy: HardeningProxy;
  let cookie = '';

  beforeAll(async () => {
    proxy = await startHardeningProxy({ nodeCount: 2 });
    const { response } = await rawExchange(proxy.port, GET('/api/session'));
    cookie = (response?.headers['set-cookie'] ?? '').split(';')[0] as string;
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('answers 503 with Retry-After before health checks notice, never 502', async () => {
    await Promise.all(proxy.nodes.map((node) => node.close()));
    // The first requests race the health checks: each must still be a 503, not a 502.
    for (const request of [GET('/down', `Cookie: ${cookie}\r\n`), GET('/down')]) {
      const { response } = await rawExchange(proxy.port, request);
      expect(response?.status).toBe(503);
      expectNoHealthyNode(JSON.parse(response?.body ?? '{}'), response?.headers ?? {});
    }
  });

  it.each([
    ['a new client', GET('/down')],
    ['a client with a session', GET('/down', 'Cookie: COOKIE\r\n')],
    [
      'a POST with a body',
      'POST /down HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello',
    ],
  ])('answers %s 503 with Retry-After once every node is down', async (_name, request) => {
    await waitFor(() => proxy.lb.registry.all.every((node) => !node.isHealthy));
    const { response, closed } = await rawExchange(proxy.port, request.replace('COOKIE', cookie));
    expect(response?.status).toBe(503);
    expect(response?.headers['retry-after']).toBe('1');
    if (!request.startsWith('HEAD'))
      expectNoHealthyNode(JSON.parse(response?.body ?? '{}'), response?.headers ?? {});
    expect(closed).toBe(true);
  });

  it('answers a WebSocket upgrade 503 and closes it', async () => {
    const { response, closed } = await rawExchange(
      proxy.port,
      'GET /ws HTTP/1.1\r\nHost: lb.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(response?.status).toBe(503);
    expect(JSON.parse(response?.body ?? '{}')).toMatchObject({ error: 'SLB_NO_HEALTHY_NODE' });
    expect(closed).toBe(true);
  });

  it('keeps a kept-alive client connection usable across 503s', async () => {
    const client = new RawConnection(proxy.port);
    for (let i = 0; i < 3; i++) {
      client.clear();
      await client.write('GET /down HTTP/1.1\r\nHost: lb.test\r\n\r\n');
      expect((await client.readResponse())?.status).toBe(503);
    }
    client.destroy();
    expect(proxy.inFlight()).toBe(0);
    await waitFor(async () => (await proxy.connections()) === 0);
  });
});

/**
 * A raw node that answers each connection's first request and resets the connection when it
 * is reused, once: the worst case of a node closing an idle keep-alive socket at the moment
 * the proxy sends on it. A reset connection never answers, so the node never saw the request.
 */
class StaleSocketNode {
  readonly server: Server;
  /** Requests answered, by path. */
  readonly answered: string[] = [];
  resets = 0;

  constructor() {
    this.server = createServer((socket: Socket) => {
      let requests = 0;
      let buffer = '';
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        for (let end = buffer.indexOf('\r\n\r\n'); end !== -1; end = buffer.indexOf('\r\n\r\n')) {
          const head = buffer.slice(0, end);
          buffer = buffer.slice(end + 4);
          const path = head.split(' ')[1] ?? '';
          requests++;
          if (requests === 2 && path !== '/health') {
            this.resets++;
            socket.resetAndDestroy();
            return;
          }
          if (path !== '/health') this.answered.push(path);
          const closing = /\r\nconnection: close/i.test(head);
          socket.write(
            `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n${closing ? 'Connection: close\r\n' : ''}\r\n{"ok":true}`,
          );
          if (closing) socket.end();
        }
      });
    });
  }

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('a node closing a kept-alive socket as the proxy reuses it', () => {
  const node = new StaleSocketNode();
  let proxy: HardeningProxy;

  beforeAll(async () => {
    proxy = await startHardeningProxy({ nodeUrls: [await node.start()] });
    await waitFor(() => proxy.lb.registry.all.every((entry) => entry.isHealthy));
  });
  afterAll(async () => {
    await proxy?.close();
    await node.close();
  });

  it.each(['GET', 'PUT', 'DELETE', 'OPTIONS'])(
    'replays an idempotent %s on a new connection: no error, no failover',
    async (method) => {
      const errorsBefore = proxy.lb.proxy.counters.upstreamErrors;
      const resetsBefore = node.resets;
      // Sequential keep-alive requests through one client connection reuse pooled sockets.
      const client = new RawConnection(proxy.port);
      for (let i = 0; i < 6; i++) {
        client.clear();
        await client.write(
          `${method} /reuse-${method}-${i} HTTP/1.1\r\nHost: lb.test\r\n${method === 'PUT' ? 'Content-Length: 2\r\n\r\nok' : '\r\n'}`,
        );
        const response = await client.readResponse();
        expect(response?.status).toBe(200);
      }
      client.destroy();
      expect(node.resets).toBeGreaterThan(resetsBefore);
      expect(node.answered.filter((path) => path.startsWith(`/reuse-${method}-`))).toHaveLength(6);
      expect(proxy.lb.proxy.counters.upstreamErrors).toBe(errorsBefore);
      expect(proxy.lb.registry.all[0]?.isHealthy).toBe(true);
      expect(proxy.lb.failover.totals.moved).toBe(0);
      await waitFor(() => proxy.inFlight() === 0);
    },
  );
});
