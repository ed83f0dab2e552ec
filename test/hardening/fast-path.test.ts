import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../integration/harness.js';
import { clientRequest, startFaultCluster, type FaultCluster } from './fault-cluster.js';
import { okResponse, type FaultRequest } from './fault-node.js';
import { parseResponse, RawConnection } from './raw-client.js';

/*
 * The fast path (src/proxy/fast-path/) on real sockets, against a raw node that can send
 * any framing: which requests it serves itself (stickylb_proxy_fast_path_requests_total),
 * how it relays each kind of answer, and how it hands a connection to the full path
 * mid-stream — a request outside its subset, or a failure before the answer — with
 * nothing lost or doubled.
 */
let cluster: FaultCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: lb.test\r\n${extra}\r\n`;

/** Reads the next complete answer on `client` and removes it from what is buffered. */
async function next(client: RawConnection): Promise<ReturnType<typeof parseResponse>> {
  await client.waitFor((text) => parseResponse(text) !== undefined);
  const response = parseResponse(client.received);
  client.received = response?.rest ?? client.received;
  return response;
}

/** Waits until the node has been asked nothing new for five polls in a row: the proxy served what it will. */
async function servedAll(c: FaultCluster): Promise<void> {
  let last = -1;
  let steady = 0;
  await waitFor(() => {
    const served = c.node.appRequests.length;
    steady = served === last ? steady + 1 : 0;
    last = served;
    return steady >= 5;
  }, 20_000);
}

/**
 * A node answering every request with 32 KiB, and a client connection that does not read
 * (paused); `accepted` collects the proxy's side of each client connection.
 */
function pausedClientOf(c: FaultCluster): { accepted: Socket[]; client: Socket; body: string } {
  const body = 'x'.repeat(32 * 1024);
  c.node.behaviour = (socket) => socket.write(okResponse(body));
  const accepted: Socket[] = [];
  c.lb.proxy.server.on('connection', (socket: Socket) => accepted.push(socket));
  const client = connect(c.proxyPort, '127.0.0.1');
  client.on('error', () => undefined);
  client.pause();
  return { accepted, client, body };
}

describe('the fast path', () => {
  it('serves plain keep-alive requests itself, each on the same pooled node connection', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    c.node.behaviour = (socket, request) => socket.write(okResponse(JSON.stringify({ path: request.path })));
    const client = new RawConnection(c.proxyPort);
    for (const path of ['/a', '/b', '/c']) {
      await client.write(get(path));
      const answer = await next(client);
      expect(answer).toMatchObject({ status: 200, body: JSON.stringify({ path }) });
      expect(answer?.headers.connection).toBe('keep-alive');
    }
    const counters = await c.counters();
    expect([counters.requests, counters.fastPathRequests]).toEqual([3, 3]);
    // One connection to the node carried all three (plus the health checks' own).
    const connections = new Set(c.node.appRequests.map((request) => request.connectionId));
    expect(connections.size).toBe(1);
    // What the node got: the client's headers, our X-Forwarded-* and the session header.
    expect(c.node.appRequests[0]?.headers).toMatchObject({
      host: 'lb.test',
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'lb.test',
    });
    expect(c.node.appRequests[0]?.headers['x-stickylb-session']).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    client.destroy();
  });

  it('answers pipelined requests in order', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    c.node.behaviour = (socket, request) => socket.write(okResponse(request.path));
    const client = new RawConnection(c.proxyPort);
    await client.write(get('/one') + get('/two') + get('/three'));
    expect((await next(client))?.body).toBe('/one');
    expect((await next(client))?.body).toBe('/two');
    expect((await next(client))?.body).toBe('/three');
    client.destroy();
  });

  it('hands a connection to the full path at a request outside its subset; the rest is served there', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    c.node.behaviour = (socket, request) => socket.write(okResponse(`${request.method} ${request.body}`));
    const client = new RawConnection(c.proxyPort);
    await client.write(get('/fast'));
    expect((await next(client))?.body).toBe('GET ');
    // A byte past ASCII in a header value (obs-text) is for the full path (Node's parser).
    await client.write(
      'POST /odd HTTP/1.1\r\nHost: lb.test\r\nX-Note: caf\u00e9\r\nContent-Length: 5\r\n\r\nhello',
    );
    expect((await next(client))?.body).toBe('POST hello');
    await client.write(get('/after'));
    expect((await next(client))?.body).toBe('GET ');
    const counters = await c.counters();
    expect([counters.requests, counters.fastPathRequests]).toEqual([3, 1]);
    client.destroy();
  });

  it('relays a chunked answer byte for byte and reuses the node connection after it', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    const chunked =
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n';
    c.node.behaviour = (socket, request) =>
      request.path === '/chunked' ? socket.write(chunked) : socket.write(okResponse('plain'));
    const client = new RawConnection(c.proxyPort);
    await client.write(get('/chunked'));
    await client.waitFor((text) => text.includes('x-trailer: 1\r\n\r\n'));
    expect(client.received.slice(client.received.indexOf('\r\n\r\n') + 4)).toBe(
      '5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n',
    );
    client.received = '';
    await client.write(get('/plain'));
    expect((await next(client))?.body).toBe('plain');
    expect(new Set(c.node.appRequests.map((request) => request.connectionId)).size).toBe(1);
    client.destroy();
  });

  it('ends the client connection after an answer that ends with the node connection', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    c.node.behaviour = (socket) =>
      socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil close');
    const client = new RawConnection(c.proxyPort);
    await client.write(get('/close-delimited'));
    expect(await client.waitForClose()).toBe(true);
    expect(client.received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(client.received).toMatch(/\r\nconnection: close\r\n/);
    expect(client.received.endsWith('\r\n\r\nuntil close')).toBe(true);
    expect((await c.counters()).truncatedResponses).toBe(0);
  });

  it('relays no body for HEAD, 204 and 304, and keeps the connection for the next request', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    c.node.behaviour = (socket, request) => {
      if (request.method === 'HEAD') socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n');
      else if (request.path === '/204') socket.write('HTTP/1.1 204 No Content\r\n\r\n');
      else if (request.path === '/304')
        socket.write('HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n');
      else socket.write(okResponse('last'));
    };
    const client = new RawConnection(c.proxyPort);
    await client.write('HEAD /head HTTP/1.1\r\nHost: lb.test\r\n\r\n');
    await client.waitFor((text) => text.includes('\r\n\r\n'));
    expect(client.received).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*content-length: 5\r\n[^]*\r\n\r\n$/);
    client.received = '';
    for (const path of ['/204', '/304']) {
      await client.write(get(path));
      await client.waitFor((text) => text.endsWith('\r\n\r\n'));
      client.received = '';
    }
    await client.write(get('/last'));
    expect((await next(client))?.body).toBe('last');
    expect(new Set(c.node.appRequests.map((request) => request.connectionId)).size).toBe(1);
    client.destroy();
  });

  it('skips a 1xx interim answer and relays the final one', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    c.node.behaviour = (socket) =>
      socket.write('HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n' + okResponse('final'));
    const client = new RawConnection(c.proxyPort);
    await client.write(get('/hints'));
    const answer = await next(client);
    expect(answer).toMatchObject({ status: 200, body: 'final' });
    client.destroy();
  });

  it('the keep-alive race: a node that closed the pooled connection under a GET; replayed once, 200', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    const answered = new Set<number>();
    // Each connection answers once, then closes when the next request arrives on it.
    c.node.behaviour = (socket, request) => {
      if (answered.has(request.connectionId)) return socket.destroy();
      answered.add(request.connectionId);
      return socket.write(okResponse(request.path));
    };
    const client = new RawConnection(c.proxyPort);
    await client.write(get('/first'));
    expect((await next(client))?.body).toBe('/first');
    await client.write(get('/second'));
    expect((await next(client))?.body).toBe('/second');
    const counters = await c.counters();
    expect(counters.retries).toBe(1);
    expect(counters.upstreamErrors).toBe(0);
    // Seen on the old connection (closed unanswered), then once on a new one.
    expect(c.node.appRequests.filter((request) => request.path === '/second')).toHaveLength(2);
    client.destroy();
  });

  it('a node that answers twice to one request: the client gets the first, the connection is dropped', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    c.node.behaviour = (socket, request) =>
      socket.write(okResponse(request.path) + (request.path === '/twice' ? okResponse('smuggled') : ''));
    const client = new RawConnection(c.proxyPort);
    await client.write(get('/twice'));
    expect((await next(client))?.body).toBe('/twice');
    const tainted = c.node.appRequests.at(-1)?.connectionId ?? 0;
    await waitFor(() => !c.node.isOpen(tainted));
    await client.write(get('/next'));
    expect((await next(client))?.body).toBe('/next');
    expect(c.node.appRequests.at(-1)?.connectionId).not.toBe(tainted);
    expect(client.received).not.toContain('smuggled');
    client.destroy();
  });

  it('holds a small body until it is whole, then sends head and body to the node together', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    c.node.behaviour = (socket, request) => socket.write(okResponse(request.body));
    const client = new RawConnection(c.proxyPort);
    await client.write('POST /split HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 11\r\n\r\nhello');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(c.node.appRequests.filter((request) => request.path === '/split')).toEqual([]);
    await client.write(' world');
    expect((await next(client))?.body).toBe('hello world');
    expect((await c.counters()).fastPathRequests).toBe(1);
    client.destroy();
  });

  it('a node connection paused by a large answer is reading again when the next request takes it', async () => {
    cluster = await startFaultCluster({ timeouts: { upstream: '2s' } });
    const c = cluster;
    const big = 'x'.repeat(20_000);
    c.node.behaviour = (socket, request) => socket.write(okResponse(request.path === '/big' ? big : 'small'));
    const client = new RawConnection(c.proxyPort);
    await client.write(get('/big'));
    expect((await next(client))?.body).toBe(big);
    await client.write(get('/small'));
    expect(await next(client)).toMatchObject({ status: 200, body: 'small' });
    expect(new Set(c.node.appRequests.map((request) => request.connectionId)).size).toBe(1);
    expect((await c.counters()).upstreamTimeouts).toBe(0);
    client.destroy();
  });

  it('relays a large answer byte for byte to a client that reads late, while other answers go through', async () => {
    // Node connections read into one shared buffer: every byte a slow client's socket still
    // holds must be a copy, or later reads (this answer's and others') would overwrite it.
    cluster = await startFaultCluster({ timeouts: { upstream: '5s' } });
    const c = cluster;
    const big = Array.from({ length: 3_000_000 }, (_, i) =>
      String.fromCharCode(97 + ((i * 7 + (i >> 12)) % 26)),
    ).join('');
    c.node.behaviour = (socket, request) =>
      socket.write(okResponse(request.path === '/big' ? big : request.path));
    const slow = connect(c.proxyPort, '127.0.0.1');
    const chunks: Buffer[] = [];
    slow.on('data', (chunk: Buffer) => chunks.push(chunk));
    slow.pause();
    slow.write(get('/big'));
    // While it is not read, other answers pass through the same read buffer.
    const other = new RawConnection(c.proxyPort);
    for (let i = 0; i < 20; i++) {
      await other.write(get(`/other-${i}`));
      expect((await next(other))?.body).toBe(`/other-${i}`);
    }
    slow.resume();
    const answer = await waitFor(() => {
      const text = Buffer.concat(chunks).toString('latin1');
      const response = parseResponse(text);
      return response?.body.length === big.length ? response : undefined;
    }, 10_000);
    expect(answer?.status).toBe(200);
    expect(answer?.body === big).toBe(true);
    slow.destroy();
    other.destroy();
  });

  it('a client that pipelines and does not read gets no more answers queued than its socket takes; all arrive once it reads', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    const { accepted, client, body } = pausedClientOf(c);
    let received = '';
    client.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    const count = 600;
    client.write(get('/x').repeat(count));
    // Not read: the proxy serves what the sockets' kernel buffers take, then waits for 'drain'.
    await servedAll(c);
    expect(c.node.appRequests.length).toBeLessThan(count);
    // One answer over the write buffer's high-water mark, never the pile of every answer asked for.
    expect(accepted[0]?.writableLength).toBeLessThan(256 * 1024);
    client.resume();
    await waitFor(
      () => received.split('HTTP/1.1 200').length - 1 === count && received.endsWith(body),
      20_000,
    );
    expect(c.node.appRequests).toHaveLength(count);
    client.destroy();
  });

  it('a half-closed client that never reads its answers is cut after the upstream timeout', async () => {
    cluster = await startFaultCluster({ timeouts: { upstream: '1s' } });
    const c = cluster;
    const { accepted, client } = pausedClientOf(c);
    client.write(get('/x').repeat(300));
    await servedAll(c);
    // Answers left unread, then the client's FIN: the connection is closing, its bytes still queued.
    client.end();
    await waitFor(() => accepted[0]?.destroyed === true, 15_000);
    expect((await c.counters()).clientAborts).toBeGreaterThanOrEqual(1);
    client.destroy();
  });

  it('bounds each silence of a streaming answer by the upstream timeout, not the whole answer', async () => {
    cluster = await startFaultCluster({ timeouts: { upstream: '500ms' } });
    const c = cluster;
    c.node.behaviour = (socket) => {
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
      let sent = 0;
      const timer = setInterval(() => {
        if (socket.destroyed) return clearInterval(timer);
        if (++sent <= 5) return socket.write('2\r\nok\r\n');
        clearInterval(timer);
        return socket.write('0\r\n\r\n');
      }, 200);
    };
    const client = new RawConnection(c.proxyPort);
    await client.write(get('/stream'));
    await client.waitFor((text) => text.endsWith('0\r\n\r\n'));
    expect(client.received.slice(client.received.indexOf('\r\n\r\n') + 4)).toBe(
      `${'2\r\nok\r\n'.repeat(5)}0\r\n\r\n`,
    );
    expect((await c.counters()).upstreamTimeouts).toBe(0);
    client.destroy();
  });

  it('closes an idle connection whose client never closes its side', async () => {
    cluster = await startFaultCluster({ timeouts: { idle: '300ms' } });
    const c = cluster;
    const open = (): Promise<number> =>
      new Promise((resolve, reject) =>
        c.lb.proxy.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
      );
    // A client that ignores our FIN: its socket stays half-open unless the proxy destroys its own.
    const stubborn = connect({ port: c.proxyPort, host: '127.0.0.1', allowHalfOpen: true });
    const silent = connect({ port: c.proxyPort, host: '127.0.0.1', allowHalfOpen: true });
    for (const socket of [stubborn, silent]) socket.on('error', () => undefined);
    await new Promise((resolve) => stubborn.once('connect', resolve));
    stubborn.write(get('/once'));
    await new Promise((resolve) => stubborn.once('data', resolve));
    await waitFor(async () => (await open()) === 0);
    stubborn.destroy();
    silent.destroy();
  });

  it('a reload (SIGHUP) of a single-process proxy gives the fast path its new upstream timeout', async () => {
    cluster = await startFaultCluster({ timeouts: { upstream: '60s' } });
    const c = cluster;
    const current = c.lb.config;
    expect(c.lb.proxy.timeoutSweepMs).toBe(1000);
    c.lb.reload({
      ...current,
      proxy: { ...current.proxy, timeouts: { ...current.proxy.timeouts, upstream: 300 } },
    });
    // Checked as often as a 300 ms timeout set at start would be: a quarter of it.
    expect(c.lb.proxy.timeoutSweepMs).toBe(75);
    c.node.behaviour = () => undefined;
    // Bounded well under the old 60 s: only the reloaded timeout can answer in time.
    const answer = await clientRequest(c.proxyPort, {}, 10_000);
    expect(answer.status).toBe(504);
    expect((await c.counters()).upstreamTimeouts).toBe(1);
    expect(c.node.appRequests).toHaveLength(1);
  });

  it('the only node refuses a new session: 503 SLB_NO_HEALTHY_NODE, the proxy stays up', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    await c.node.close();
    // Before a health check sees it: the refused connection is the first to tell, and there
    // is no other node to move the new session to.
    const answer = await clientRequest(c.proxyPort, {}, 5000);
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'SLB_NO_HEALTHY_NODE' });
    const counters = await c.counters();
    expect(counters.noHealthyNode).toBe(1);
    expect(c.lb.registry.all.every((node) => node.inFlight === 0)).toBe(true);
  });

  it('a GET resent once after the keep-alive race is not resent again by the full path: 2 attempts, then 502', async () => {
    cluster = await startFaultCluster({}, 2);
    const c = cluster;
    // Nodes that use the session, so the proxy keeps it and sets its cookie.
    const used = (socket: Socket, request: FaultRequest): void => {
      socket.write(
        'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-stickylb-session-used: 1\r\n' +
          `content-length: ${request.path.length}\r\n\r\n${request.path}`,
      );
    };
    for (const node of c.nodes) node.behaviour = used;
    const client = new RawConnection(c.proxyPort);
    const first = await next((await client.write(get('/first')), client));
    const cookie = String(first?.headers['set-cookie']).split(';')[0];
    const [x, y] = c.nodes[0]?.appRequests.length ? [c.nodes[0], c.nodes[1]] : [c.nodes[1], c.nodes[0]];
    if (x === undefined || y === undefined) throw new Error('two nodes expected');
    // A second session lands on the other node (least sessions): a pooled connection to it.
    const other = new RawConnection(c.proxyPort);
    await other.write(get('/warm'));
    expect((await next(other))?.status).toBe(200);
    expect(y.appRequests.map((request) => request.path)).toEqual(['/warm']);
    // x resets its pooled connection and refuses new ones; y resets its pooled one once.
    x.stopListening();
    x.behaviour = (socket) => socket.destroy();
    let resets = 0;
    y.behaviour = (socket, request) => (resets++ === 0 ? socket.destroy() : used(socket, request));
    const before = await c.counters();
    await client.write(get('/again', `Cookie: ${cookie}\r\n`));
    const answer = await next(client);
    // Reset on x's pooled connection, resent on a new one (refused), moved to y, reset on y's
    // pooled connection: two attempts and one resend are all the full path would allow.
    expect(answer?.status).toBe(502);
    expect(y.appRequests.filter((request) => request.path === '/again')).toHaveLength(1);
    const after = await c.counters();
    expect(after.retries - before.retries).toBe(2);
    expect(c.lb.registry.all.every((node) => node.inFlight === 0)).toBe(true);
    client.destroy();
    other.destroy();
  });
});
