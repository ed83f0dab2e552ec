import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Client, startCluster, waitFor, type Cluster } from './harness.js';

let cluster: Cluster;

beforeAll(async () => {
  // Every wait of a request in the proxy ends after proxy.timeouts.upstream (504 naming what
  // it waited for). Shorter than a test's 30 s: a request stuck in the proxy fails its test
  // with that answer; one that still times out was stuck outside the proxy's request path.
  cluster = await startCluster({ nodeCount: 3, config: { proxy: { timeouts: { upstream: '10s' } } } });
});
afterAll(async () => {
  await cluster?.close();
});

async function rejectedIds(): Promise<number> {
  const state = (await (await fetch(`${cluster.adminUrl}/api/state`)).json()) as {
    proxy: { rejectedIds: number };
  };
  return state.proxy.rejectedIds;
}

/** Raw HTTP/1.1 exchange, for requests fetch would normalise. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let data = '';
    socket.on('data', (chunk) => (data += chunk.toString()));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve(data);
    });
  });
}

describe('sticky sessions through the proxy', () => {
  it('keeps 20 clients × 5 writes each on their node with their own counter', async () => {
    const clients = Array.from({ length: 20 }, () => new Client(cluster.proxyUrl));
    const results = await Promise.all(
      clients.map(async (client) => {
        const seen: Array<{ node: string; count: number }> = [];
        for (let i = 0; i < 5; i++) {
          const { status, json } = await client.request('POST', '/api/counter');
          expect(status, JSON.stringify(json)).toBe(200);
          seen.push({ node: json.node, count: json.count });
        }
        return seen;
      }),
    );
    for (const seen of results) {
      expect(new Set(seen.map((s) => s.node)).size).toBe(1);
      expect(seen.map((s) => s.count)).toEqual([1, 2, 3, 4, 5]);
    }
  });

  it('issues the cookie HttpOnly, SameSite=Lax, Path=/ and tells the node the same id', async () => {
    const response = await fetch(`${cluster.proxyUrl}/api/counter`, { method: 'POST' });
    const cookie = response.headers.getSetCookie().find((line) => line.startsWith('SESSIONID='));
    expect(cookie).toBeDefined();
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure/);
    const body = (await response.json()) as { sessionId: string };
    expect(cookie?.slice('SESSIONID='.length, cookie.indexOf(';'))).toBe(body.sessionId);
    // ≥128 random bits, base64url, plus route and MAC.
    expect(body.sessionId).toMatch(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{22}$/);
  });

  it('creates no session for requests that never touch it', async () => {
    // Workers report sessions used within ~20 ms: let earlier tests' reports land first.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const before = cluster.lb.affinity.size;
    const response = await fetch(`${cluster.proxyUrl}/health`);
    expect(response.status).toBe(200);
    expect(response.headers.getSetCookie()).toEqual([]);
    expect(response.headers.get('x-stickylb-session-used')).toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(cluster.lb.affinity.size).toBe(before);
  });

  it('serves cookieless clients by the sessionId URL parameter', async () => {
    const client = new Client(cluster.proxyUrl, 'url');
    const first = await client.request('POST', '/api/counter');
    const second = await client.request('POST', '/api/counter?x=1');
    const third = await client.request('GET', '/api/counter');
    expect([first.json.count, second.json.count, third.json.count]).toEqual([1, 2, 2]);
    expect(new Set([first.json.node, second.json.node, third.json.node]).size).toBe(1);
  });

  it('prefers the cookie when cookie and URL parameter disagree', async () => {
    const a = new Client(cluster.proxyUrl);
    const b = new Client(cluster.proxyUrl);
    await a.request('POST', '/api/counter');
    await b.request('POST', '/api/counter');
    await b.request('POST', '/api/counter');
    const response = await fetch(`${cluster.proxyUrl}/api/counter?sessionId=${b.sessionId}`, {
      headers: { cookie: `SESSIONID=${a.sessionId}` },
    });
    const body = (await response.json()) as { sessionId: string; count: number };
    expect(body.sessionId).toBe(a.sessionId);
    expect(body.count).toBe(1);
  });

  it.each([
    ['a made-up id', 'attacker-chosen-session-id'],
    ['an id with an altered MAC', 'MAC'],
    ['an id with an altered route', 'ROUTE'],
    ['an id with an altered key', 'KEY'],
  ])('never adopts or reflects %s', async (_case, kind) => {
    const victim = new Client(cluster.proxyUrl);
    await victim.request('POST', '/api/counter');
    const real = victim.sessionId as string;
    const [key, route, mac] = real.split('.') as [string, string, string];
    const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    const forged =
      kind === 'MAC'
        ? `${key}.${route}.${flip(mac)}`
        : kind === 'ROUTE'
          ? `${key}.${flip(route)}.${mac}`
          : kind === 'KEY'
            ? `${flip(key)}.${route}.${mac}`
            : kind;
    const rejectedBefore = await rejectedIds();
    const response = await fetch(`${cluster.proxyUrl}/api/counter`, {
      method: 'POST',
      headers: { cookie: `SESSIONID=${forged}` },
    });
    const body = (await response.json()) as { sessionId: string; count: number };
    expect(body.sessionId).not.toBe(forged);
    expect(body.count).toBe(1);
    const issued = response.headers.getSetCookie().join('\n');
    expect(issued).not.toContain(forged);
    expect(issued).toContain(body.sessionId);
    // Workers report their counters every 250 ms.
    await waitFor(async () => (await rejectedIds()) === rejectedBefore + 1);
  });

  it('passes the node’s own Set-Cookie through next to ours', async () => {
    const response = await fetch(`${cluster.proxyUrl}/api/preferences`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ theme: 'dark' }),
    });
    expect(response.status).toBe(200);
    const cookies = response.headers.getSetCookie();
    expect(cookies.some((line) => line.startsWith('theme=dark'))).toBe(true);
    expect(cookies.some((line) => line.startsWith('SESSIONID='))).toBe(true);
  });

  it('strips client-sent internal and hop-by-hop headers and sets X-Forwarded-*', async () => {
    // node:http, not fetch: fetch refuses to send a Connection header at all.
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: Number(new URL(cluster.proxyUrl).port),
          path: '/api/headers',
          headers: {
            'x-stickylb-session': 'forged',
            'X-StickyLB-Secret': 'guess',
            x_stickylb_session: 'forged-underscore',
            'x-forwarded-for': '6.6.6.6',
            'x-forwarded-host': 'evil.example',
            'x-custom': 'kept',
            'x-drop-me': 'listed in Connection',
            connection: 'x-drop-me',
          },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
      req.end();
    });
    const { headers } = JSON.parse(body) as { headers: Record<string, string> };
    expect(headers['x-stickylb-session']).not.toBe('forged');
    expect(headers['x-stickylb-session']).toMatch(/^[A-Za-z0-9_-]{22}\./);
    expect(headers['x-stickylb-secret']).toBeUndefined();
    expect(headers.x_stickylb_session).toBeUndefined();
    expect(headers['x-drop-me']).toBeUndefined();
    expect(headers['x-custom']).toBe('kept');
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers['x-forwarded-host']).toBe(new URL(cluster.proxyUrl).host);
    expect(headers['x-forwarded-proto']).toBe('http');
  });

  it.each(['/_stickylb/replica', '/%5Fstickylb/replica', '/%5fSTICKYLB/x', '/a/../_stickylb/x'])(
    'answers 404 for the internal route %s',
    async (path) => {
      const answer = await rawRequest(
        Number(new URL(cluster.proxyUrl).port),
        `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 404/);
      expect(answer).toContain('"error":"SLB_NOT_FOUND"');
    },
  );

  it('keeps a WebSocket on the session’s node', async () => {
    const client = new Client(cluster.proxyUrl);
    const { json } = await client.request('POST', '/api/counter');
    const wsUrl = `${cluster.proxyUrl.replace('http', 'ws')}/ws`;
    const socket = new WebSocket(wsUrl, { headers: { cookie: `SESSIONID=${client.sessionId}` } });
    const messages: string[] = [];
    socket.on('message', (data) => messages.push(data.toString()));
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    await waitFor(() => messages.length >= 1);
    expect(JSON.parse(messages[0] as string)).toEqual({ node: json.node, sessionId: client.sessionId });
    socket.send('ping-1');
    await waitFor(() => messages.length >= 2);
    expect(messages[1]).toBe('ping-1');
    socket.close();
  });

  it('gives a WebSocket without a session a fresh id on the 101, counted nowhere while no node stored it', async () => {
    const total = async (): Promise<number> =>
      ((await (await fetch(`${cluster.adminUrl}/api/state`)).json()) as { sessions: { total: number } })
        .sessions.total;
    const before = await total();
    const wsUrl = `${cluster.proxyUrl.replace('http', 'ws')}/ws`;
    const socket = new WebSocket(wsUrl);
    // Both listeners before any await: the first message can arrive in the same packet as the 101.
    const firstMessage = new Promise<string>((resolve) =>
      socket.once('message', (data) => resolve(data.toString())),
    );
    const upgrade = await new Promise<IncomingMessage>((resolve, reject) => {
      socket.once('upgrade', resolve);
      socket.once('error', reject);
    });
    const first = await firstMessage;
    const cookie = (upgrade.headers['set-cookie'] ?? []).find((line) => line.startsWith('SESSIONID='));
    expect(cookie).toBeDefined();
    expect(cookie).toContain(JSON.parse(first).sessionId);
    socket.close();
    // The demo's /ws never touches the session: no node holds it, and /api/state counts none.
    expect(await total()).toBe(before);
  });

  it('answers a WebSocket to an internal path with 404 and stays up', async () => {
    const socket = new WebSocket(`${cluster.proxyUrl.replace('http', 'ws')}/_stickylb/ws`);
    const status = await new Promise<number>((resolve) => {
      socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.once('error', () => resolve(-1));
    });
    expect(status).toBe(404);
    expect((await fetch(`${cluster.proxyUrl}/health`)).status).toBe(200);
  });

  it('spreads 300 new sessions within ±30% of even', async () => {
    const before = new Map(cluster.lb.registry.all.map((node) => [node.id, node.sessions]));
    const counts = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const { json } = await new Client(cluster.proxyUrl).request('POST', '/api/counter');
      counts.set(json.node, (counts.get(json.node) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['node-1', 'node-2', 'node-3']);
    // least-sessions evens out totals; count what each node holds now.
    const totals = cluster.lb.registry.all.map((node) => node.sessions);
    const mean = totals.reduce((a, b) => a + b, 0) / totals.length;
    for (const total of totals) expect(Math.abs(total - mean)).toBeLessThanOrEqual(mean * 0.3);
    expect([...before.values()].every((n) => n >= 0)).toBe(true);
  });

  it('reports each node’s live sessions in /api/state', async () => {
    // With proxy workers, sessions used reach the control plane in batches within ~20 ms.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const state = (await (await fetch(`${cluster.adminUrl}/api/state`)).json()) as {
      nodes: Array<{ id: string; url: string; state: string; sessions: number }>;
      sessions: { total: number };
    };
    expect(state.nodes.map((node) => node.id)).toEqual(['node-1', 'node-2', 'node-3']);
    for (const node of state.nodes) expect(node.state).toBe('up');
    expect(state.nodes.reduce((sum, node) => sum + node.sessions, 0)).toBe(state.sessions.total);
    expect(state.sessions.total).toBe(cluster.lb.affinity.size);
  });

  it('reports each node’s store metrics and biggest compartments in /api/state', async () => {
    const client = new Client(cluster.proxyUrl);
    const { json } = await client.request('POST', '/api/cart', { item: 'teapot' });
    expect(json).toBeDefined();
    const node = (await client.request('GET', '/api/counter')).json.node as string;
    const report = await waitFor(async () => {
      const state = (await (await fetch(`${cluster.adminUrl}/api/state`)).json()) as {
        nodes: Array<{
          id: string;
          store?: { store: { total: number }; compartments: Array<{ path: string }> };
        }>;
      };
      const store = state.nodes.find((n) => n.id === node)?.store;
      return store?.compartments.some((c) => c.path === 'cart') ? store : undefined;
    });
    expect(report.store.total).toBeGreaterThan(0);
    // The node's replication queue (lag) and failures reach /api/state and /metrics too.
    expect(
      (report as unknown as { replication: { pending: number } }).replication.pending,
    ).toBeGreaterThanOrEqual(0);
    const metrics = await (await fetch(`${cluster.adminUrl}/metrics`)).text();
    expect(metrics).toContain(`stickylb_node_replication_pending{node="${node}"}`);
    expect(metrics).toContain(`stickylb_node_replication_failed_requests_total{node="${node}"}`);
  });

  it('aborts the upstream request as soon as the client leaves mid-response', async () => {
    const node = cluster.nodes[0] as { url: string };
    const port = Number(new URL(cluster.proxyUrl).port);
    const openBefore = ((await (await fetch(`${node.url}/api/stream/open`)).json()) as { open: number }).open;
    // Route to node-1 explicitly: mint a session there first.
    const client = new Client(cluster.proxyUrl);
    let json: { node: string } = { node: '' };
    while (json.node !== 'node-1') {
      client.sessionId = undefined;
      json = (await client.request('POST', '/api/counter')).json;
    }
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        {
          port,
          host: '127.0.0.1',
          path: '/api/stream',
          headers: { cookie: `SESSIONID=${client.sessionId}` },
        },
        (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', () => undefined);
      req.once('error', reject);
      req.end();
    });
    await waitFor(async () => {
      const body = (await (await fetch(`${node.url}/api/stream/open`)).json()) as { open: number };
      return body.open === openBefore;
    });
    await waitFor(async () => {
      const state = (await (await fetch(`${cluster.adminUrl}/api/state`)).json()) as {
        nodes: Array<{ id: string; inFlight: number }>;
      };
      return state.nodes.find((n) => n.id === 'node-1')?.inFlight === 0;
    });
  });

  it('answers JSON 400 to a malformed request and keeps serving', async () => {
    const port = Number(new URL(cluster.proxyUrl).port);
    const answer = await rawRequest(
      port,
      'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect(answer).toContain('"error":"SLB_BAD_REQUEST"');
    expect((await fetch(`${cluster.proxyUrl}/health`)).status).toBe(200);
  });

  it('answers 431 to oversized headers', async () => {
    const port = Number(new URL(cluster.proxyUrl).port);
    const answer = await rawRequest(
      port,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431/);
    expect(answer).toContain('"error":"SLB_HEADERS_TOO_LARGE"');
  });
});
