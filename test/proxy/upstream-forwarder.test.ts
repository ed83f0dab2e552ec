import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { closeUpstreamTarget, upstreamTargetOf, type UpstreamTarget } from '../../src/nodes/index.js';
import { readRequestHead, setSessionHeader } from '../../src/proxy/header-hygiene.js';
import { UpstreamForwarder, type ForwardHooks } from '../../src/proxy/upstream-forwarder.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const servers: Server[] = [];
const targets: UpstreamTarget[] = [];

afterEach(async () => {
  for (const target of targets.splice(0)) closeUpstreamTarget(target);
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function listen(handler: Handler): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Seen {
  sessionUsed: string | undefined;
  errors: Error[];
  truncated: number;
}

/** A proxy made of the forwarder alone, in front of `nodeUrl`. */
async function proxyTo(
  nodeUrl: string,
  options: { timeoutMs?: number; cookie?: string; connections?: number } = {},
): Promise<{ url: string; seen: Seen }> {
  const seen: Seen = { sessionUsed: undefined, errors: [], truncated: 0 };
  const hooks: ForwardHooks = {
    onResponseHead: (_res, sessionUsed) => {
      seen.sessionUsed = sessionUsed;
      return options.cookie;
    },
    onError: (error, _req, res) => {
      seen.errors.push(error);
      if (res.headersSent) res.destroy();
      else res.writeHead(502).end(error.message);
    },
    onTruncated: () => seen.truncated++,
  };
  const forwarder = new UpstreamForwarder(hooks, { timeoutMs: options.timeoutMs ?? 5000 });
  const target =
    options.connections === undefined
      ? upstreamTargetOf(nodeUrl)
      : smallTargetOf(nodeUrl, options.connections);
  targets.push(target);
  const url = await listen((req, res) => {
    const head = readRequestHead(req.rawHeaders, '127.0.0.1', false, false, 'x-stickylb-session');
    setSessionHeader(head, { sessionId: 'id-1', isNew: false });
    forwarder.forward(req, res, target, head);
  });
  return { url, seen };
}

/** A target whose pool holds at most `connections` connections: a held one shows as a waiting request. */
function smallTargetOf(nodeUrl: string, connections: number): UpstreamTarget {
  const { origin, host } = new URL(nodeUrl);
  return { origin, hostHeader: host, pool: new Pool(origin, { connections, pipelining: 1 }), raw: undefined };
}

/** Resolves to `promise`'s value, or to 'hung' if it has not settled after `ms` (a bound, not a timing). */
function orHung<T>(promise: Promise<T>, ms: number): Promise<T | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), ms)));
  return Promise.race([promise, hung]).finally(() => clearTimeout(timer));
}

/**
 * A node answering `/big` with `size` bytes, written as fast as its socket takes them; any other
 * path gets `small`. `state.waits` counts the times it had to wait for 'drain' (every buffer on the way full).
 */
async function listenBig(size: number): Promise<{
  url: string;
  state: { written: number; waits: number; isWaiting: boolean; bigSocket: Socket | undefined };
}> {
  const chunk = Buffer.alloc(1024 * 1024, 98);
  const state = { written: 0, waits: 0, isWaiting: false, bigSocket: undefined as Socket | undefined };
  const url = await listen((req, res) => {
    if (req.url !== '/big') {
      res.end('small');
      return;
    }
    state.bigSocket = req.socket;
    res.writeHead(200, { 'content-length': String(size) });
    const writeMore = (): void => {
      while (state.written < size) {
        state.written += chunk.length;
        if (!res.write(chunk)) {
          state.isWaiting = true;
          state.waits++;
          res.once('drain', () => {
            state.isWaiting = false;
            writeMore();
          });
          return;
        }
      }
      res.end();
    };
    writeMore();
  });
  return { url, state };
}

/** Writes `text` as is on a new connection; resolves to everything read until the server closes. */
function sendRaw(url: string, text: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(text));
    let reply = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (reply += chunk));
    socket.on('end', () => resolve(reply));
    socket.on('error', reject);
  });
}

/** Polls `condition` every `intervalMs` until it holds (the test's own timeout bounds it). */
async function waitUntil(condition: () => boolean, intervalMs = 20): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, intervalMs));
}

function send(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string[]; path?: string } = {},
): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${options.path ?? '/'}`, {
      method: options.method ?? 'GET',
      headers: options.headers,
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    for (const chunk of options.body ?? []) req.write(chunk);
    req.end();
  });
}

describe('UpstreamForwarder', () => {
  it('passes method, path, headers and status through, and strips hop-by-hop and internal response headers', async () => {
    const node = await listen((req, res) => {
      res.setHeader('x-stickylb-session-used', '7');
      res.setHeader('keep-alive', 'timeout=99');
      res.setHeader('x-app', 'yes');
      res.setHeader('set-cookie', ['app=1']);
      res.statusMessage = 'Made';
      res.writeHead(201);
      res.end(
        JSON.stringify({
          method: req.method,
          url: req.url,
          header: req.headers['x-client'],
          session: req.headers['x-stickylb-session'],
        }),
      );
    });
    const { url, seen } = await proxyTo(node, { cookie: 'SESSIONID=abc; Path=/' });
    const answer = await send(url, { method: 'PUT', path: '/a?b=1', headers: { 'x-client': 'c' } });
    expect(answer.status).toBe(201);
    expect(JSON.parse(answer.body)).toEqual({ method: 'PUT', url: '/a?b=1', header: 'c', session: 'id-1' });
    expect(answer.headers['x-app']).toBe('yes');
    expect(answer.headers['x-stickylb-session-used']).toBeUndefined();
    expect(answer.headers['keep-alive']).not.toBe('timeout=99');
    expect(answer.headers['set-cookie']).toEqual(['app=1', 'SESSIONID=abc; Path=/']);
    expect(seen.sessionUsed).toBe('7');
  });

  it("drops the headers the node's Connection line lists (they were for the proxy), and keeps the rest", async () => {
    const node = await listen((_req, res) => {
      res.setHeader('connection', 'keep-alive, X-Hop, x-other');
      res.setHeader('x-hop', 'secret');
      res.setHeader('X-Other', 'also');
      res.setHeader('x-app', 'yes');
      res.end('ok');
    });
    const { url } = await proxyTo(node);
    const answer = await send(url);
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('ok');
    expect(answer.headers['x-hop']).toBeUndefined();
    expect(answer.headers['x-other']).toBeUndefined();
    expect(answer.headers['x-app']).toBe('yes');
    expect(answer.headers['content-length']).toBe('2');
  });

  it('streams a chunked request body and a large chunked answer', async () => {
    const big = 'x'.repeat(4 * 1024 * 1024);
    const node = await listen((req, res) => {
      let received = '';
      req.setEncoding('latin1');
      req.on('data', (chunk: string) => (received += chunk));
      req.on('end', () => {
        res.write(received);
        res.end(big);
      });
    });
    const { url } = await proxyTo(node);
    const answer = await send(url, { method: 'POST', body: ['one,', 'two'] });
    expect(answer.status).toBe(200);
    expect(answer.body.length).toBe('one,two'.length + big.length);
    expect(answer.body.startsWith('one,twox')).toBe(true);
  });

  it("re-frames a chunked request body itself: the client's Transfer-Encoding line is not forwarded", async () => {
    const node = await listen((req, res) => {
      let received = '';
      req.setEncoding('latin1');
      req.on('data', (chunk: string) => (received += chunk));
      req.on('end', () => res.end(`${req.rawHeaders.join('|')}\n${received}`));
    });
    const { url } = await proxyTo(node);
    const reply = await sendRaw(
      url,
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
        '4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    const [headers = '', body] = reply.slice(reply.indexOf('\r\n\r\n') + 4).split('\n');
    expect(body).toBe('one,two');
    // One framing header: ours (lower case), never the client's line forwarded as well.
    expect(headers.match(/transfer-encoding/gi)).toEqual(['transfer-encoding']);
  });

  it('answers Expect: 100-continue itself and forwards the body without the Expect line', async () => {
    const node = await listen((req, res) => {
      let received = '';
      req.setEncoding('latin1');
      req.on('data', (chunk: string) => (received += chunk));
      req.on('end', () => res.end(`expect=${req.headers.expect} body=${received}`));
    });
    const { url } = await proxyTo(node);
    const socket = connect(Number(new URL(url).port), '127.0.0.1');
    socket.setEncoding('latin1');
    let reply = '';
    let isBodySent = false;
    socket.on('data', (chunk: string) => {
      reply += chunk;
      // The body goes only once the proxy said to go on (no FIN: that would abort the request).
      if (reply.startsWith('HTTP/1.1 100') && !isBodySent) {
        isBodySent = true;
        socket.write('hello');
      }
    });
    socket.write(
      'POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n',
    );
    await new Promise((resolve) => socket.on('close', resolve));
    expect(reply).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200/);
    expect(reply.endsWith('expect=undefined body=hello')).toBe(true);
  });

  it('holds a large request body back while the node does not read it (no buffering in the proxy)', async () => {
    const size = 48 * 1024 * 1024;
    let nodeReq: IncomingMessage | undefined;
    const node = await listen((req, res) => {
      nodeReq = req;
      req.pause();
      let bytes = 0;
      req.on('data', (chunk: Buffer) => (bytes += chunk.length));
      req.on('end', () => res.end(`bytes=${bytes}`));
    });
    const { url } = await proxyTo(node);
    const socket = connect(Number(new URL(url).port), '127.0.0.1');
    socket.setEncoding('latin1');
    let reply = '';
    socket.on('data', (chunk: string) => (reply += chunk));
    socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`);
    socket.write(Buffer.alloc(size, 97));
    await waitUntil(() => nodeReq !== undefined);
    // Settled: the client's unsent bytes stop shrinking once every buffer on the way is full.
    let unsent = -1;
    await waitUntil(() => {
      const settled = socket.writableLength === unsent;
      unsent = socket.writableLength;
      return settled;
    }, 200);
    // Socket buffers on the way hold a few MB at most; the proxy took no more than they do.
    expect(socket.writableLength).toBeGreaterThan(size / 2);
    nodeReq?.resume();
    await new Promise((resolve) => socket.on('close', resolve));
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(reply.endsWith(`bytes=${size}`)).toBe(true);
  });

  it('holds a large answer back while the client does not read it, and resumes when it does', async () => {
    const size = 48 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 98);
    let written = 0;
    let isWaiting = false;
    const node = await listen((_req, res) => {
      res.writeHead(200, { 'content-length': String(size) });
      const writeMore = (): void => {
        while (written < size) {
          written += chunk.length;
          if (!res.write(chunk)) {
            isWaiting = true;
            res.once('drain', () => {
              isWaiting = false;
              writeMore();
            });
            return;
          }
        }
        res.end();
      };
      writeMore();
    });
    const { url } = await proxyTo(node);
    const socket = connect(Number(new URL(url).port), '127.0.0.1');
    socket.pause();
    socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    // Settled: the node waits for 'drain' and its count stops moving (every buffer on the way is full).
    let seen = -1;
    await waitUntil(() => {
      const settled = isWaiting && written === seen;
      seen = written;
      return settled;
    }, 200);
    // Socket buffers on the way hold a few MB at most: the proxy did not read the rest ahead.
    expect(written).toBeLessThan(size / 2);
    let received = 0;
    socket.on('data', (data: Buffer) => (received += data.length));
    socket.resume();
    await new Promise((resolve) => socket.on('close', resolve));
    expect(written).toBe(size);
    expect(received).toBeGreaterThan(size);
  });

  it('answers HEAD and 204 without a body', async () => {
    const node = await listen((req, res) => {
      if (req.method === 'HEAD') res.writeHead(200, { 'content-length': '5' }).end();
      else res.writeHead(204).end();
    });
    const { url } = await proxyTo(node);
    expect(await send(url, { method: 'HEAD' })).toMatchObject({ status: 200, body: '' });
    expect(await send(url, { method: 'DELETE' })).toMatchObject({ status: 204, body: '' });
  });

  it.each(['POST', 'PUT', 'PATCH'])(
    'forwards a %s without Content-Length or Transfer-Encoding as bodiless (not chunked)',
    async (method) => {
      const node = await listen((req, res) => {
        let bytes = 0;
        req.on('data', (chunk: Buffer) => (bytes += chunk.length));
        req.on('end', () =>
          res.end(
            `cl=${req.headers['content-length']} te=${req.headers['transfer-encoding']} bytes=${bytes}`,
          ),
        );
      });
      const { url } = await proxyTo(node);
      const reply = await sendRaw(url, `${method} / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(reply).toMatch(/^HTTP\/1\.1 200/);
      expect(reply.endsWith('cl=0 te=undefined bytes=0')).toBe(true);
    },
  );

  it("gives an HTTP/1.0 request without Host the node's host", async () => {
    const node = await listen((req, res) => res.end(`host=${req.headers.host}`));
    const { url } = await proxyTo(node);
    const reply = await sendRaw(url, 'GET / HTTP/1.0\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(reply.endsWith(`host=${new URL(node).host}`)).toBe(true);
  });

  it('reports a refused connection to onError', async () => {
    const node = await listen(() => undefined);
    servers.pop()?.close();
    const { url, seen } = await proxyTo(node);
    const answer = await send(url);
    expect(answer.status).toBe(502);
    expect((seen.errors[0] as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });

  it('reports a node that does not answer in time to onError', async () => {
    const node = await listen(() => undefined);
    const { url, seen } = await proxyTo(node, { timeoutMs: 100 });
    const answer = await send(url);
    expect(answer.status).toBe(502);
    expect((seen.errors[0] as NodeJS.ErrnoException).code).toBe('SLB_UPSTREAM_TIMEOUT');
  });

  it('keeps the upstream timeout on a pooled socket whose node hinted a shorter keep-alive', async () => {
    let calls = 0;
    const node = await listen((_req, res) => {
      calls++;
      // The second request answers after the hint (1 s - Node's 1 s margin = 0) but well within the timeout.
      const answer = (): void => void res.writeHead(200, { 'keep-alive': 'timeout=2' }).end('ok');
      if (calls === 1) answer();
      else setTimeout(answer, 1500);
    });
    const { url, seen } = await proxyTo(node, { timeoutMs: 5000 });
    expect((await send(url)).status).toBe(200);
    expect((await send(url)).status).toBe(200);
    expect(seen.errors).toEqual([]);
  });

  it('cuts the client connection when the node dies mid-answer', async () => {
    const node = await listen((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setTimeout(() => (res.socket as Socket).destroy(), 20);
    });
    const { url, seen } = await proxyTo(node);
    await expect(send(url)).rejects.toThrow();
    expect(seen.truncated).toBe(1);
  });

  it('cuts a client that stops reading a large answer after the timeout, and frees its node connection', async () => {
    const size = 48 * 1024 * 1024;
    const node = await listenBig(size);
    const { url } = await proxyTo(node.url, { timeoutMs: 300, connections: 1 });
    const stalled = connect(Number(new URL(url).port), '127.0.0.1');
    stalled.pause();
    stalled.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    // Settled: the node waits for 'drain' and its count stops moving (every buffer on the way is full).
    let seen = -1;
    await waitUntil(() => {
      const settled = node.state.isWaiting && node.state.written === seen;
      seen = node.state.written;
      return settled;
    }, 200);
    // The pool's one connection was held by the stalled answer: this request could only wait for it.
    const answer = await orHung(send(url, { path: '/small' }), 10_000);
    expect(answer).toMatchObject({ status: 200, body: 'small' });
    // The node's connection that carried the stalled answer was closed, not returned to the pool.
    await waitUntil(() => node.state.bigSocket?.destroyed === true);
    // The stalled client's connection was cut: it ends short of the whole answer once it reads again.
    let received = 0;
    stalled.on('data', (data: Buffer) => (received += data.length));
    stalled.on('error', () => undefined);
    const closed = new Promise((resolve) => stalled.on('close', resolve));
    stalled.resume();
    await closed;
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(size);
  });

  it('does not cut a client that reads slowly but keeps reading', async () => {
    const size = 48 * 1024 * 1024;
    const node = await listenBig(size);
    const { url, seen } = await proxyTo(node.url, { timeoutMs: 800, connections: 1 });
    const socket = connect(Number(new URL(url).port), '127.0.0.1');
    socket.write('GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    let received = 0;
    socket.on('data', (data: Buffer) => (received += data.length));
    // Reads in short bursts, each pause well under the timeout but long enough to fill every
    // buffer on the way: the answer takes several timeouts in all, stalled most of that time.
    socket.pause();
    const reader = setInterval(() => {
      socket.resume();
      setTimeout(() => socket.pause(), 10);
    }, 300);
    await new Promise((resolve) => socket.on('close', resolve));
    clearInterval(reader);
    expect(received).toBeGreaterThan(size);
    expect(node.state.waits).toBeGreaterThan(3);
    expect(seen.errors).toEqual([]);
  });

  it('does not cut an answer that keeps flowing, slowly, after a stall the client drained', async () => {
    const burst = 48 * 1024 * 1024;
    let tail: ServerResponse | undefined;
    let isWaiting = false;
    const node = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(1024 * 1024, 98);
      let written = 0;
      const writeMore = (): void => {
        while (written < burst) {
          written += chunk.length;
          if (!res.write(chunk)) {
            isWaiting = true;
            res.once('drain', writeMore);
            return;
          }
        }
        // Then a trickle, like a server-sent event stream: no backpressure, for several timeouts.
        tail = res;
      };
      writeMore();
    });
    const { url, seen } = await proxyTo(node, { timeoutMs: 600 });
    const socket = connect(Number(new URL(url).port), '127.0.0.1');
    // Stalled first (the node waits for 'drain': every buffer on the way is full), then read.
    socket.pause();
    socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await waitUntil(() => isWaiting);
    let received = '';
    socket.setEncoding('latin1');
    socket.on(
      'data',
      (data: string) => (received = received.length > 64 ? received.slice(-64) + data : received + data),
    );
    let isClosed = false;
    const closed = new Promise((resolve) => socket.on('close', resolve)).then(() => (isClosed = true));
    socket.resume();
    // A cut client would close here, before the node ever gets to its trickle.
    await waitUntil(() => tail !== undefined || isClosed);
    for (let i = 0; i < 6 && !isClosed; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      tail?.write(`event ${i}\n`);
    }
    tail?.end('end\n');
    await closed;
    // Re-framed chunk by chunk: the last event, the end, and the terminating chunk all arrived.
    expect(received).toMatch(/event 5\n\r\n[0-9a-f]+\r\nend\n\r\n0\r\n\r\n$/);
    expect(seen.errors).toEqual([]);
  });

  it('answers a request that waited for a pooled connection longer than the timeout, and keeps the connection', async () => {
    let connections = 0;
    let release: (() => void) | undefined;
    const paths: string[] = [];
    const node = await listen((req, res) => {
      paths.push(req.url ?? '');
      if (req.url !== '/stream') {
        res.end('small');
        return;
      }
      // Holds the only connection, legitimately: a chunk well within the timeout, until released.
      res.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write('tick\n'), 100);
      release = () => {
        clearInterval(timer);
        res.end('end\n');
      };
    });
    servers[servers.length - 1]?.on('connection', () => connections++);
    const { url, seen } = await proxyTo(node, { timeoutMs: 500, connections: 1 });
    const streaming = send(url, { path: '/stream' });
    await waitUntil(() => release !== undefined);
    const queued = await orHung(send(url, { path: '/queued' }), 10_000);
    expect(queued).toMatchObject({ status: 502 });
    expect((seen.errors[0] as NodeJS.ErrnoException | undefined)?.code).toBe('SLB_UPSTREAM_TIMEOUT');
    release?.();
    expect((await streaming).status).toBe(200);
    expect(await send(url, { path: '/after' })).toMatchObject({ status: 200, body: 'small' });
    // The request given up was never sent, and the pool's connection outlived it.
    expect(paths).toEqual(['/stream', '/after']);
    expect(connections).toBe(1);
  });
});
