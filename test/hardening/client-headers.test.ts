import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHardeningProxy, type HardeningProxy } from './proxy-fixture.js';
import { rawExchange } from './raw-client.js';

/*
 * Headers a client must not be able to pass to a node: our internal `x-stickylb-*` (any
 * case, `-` or `_`), `X-Forwarded-*` / `Forwarded` from an untrusted peer, hop-by-hop
 * headers and anything listed in `Connection:`. Stripped, then ours set afterwards. The
 * node's own record of what it received is the proof.
 */
let proxy: HardeningProxy;

beforeAll(async () => {
  proxy = await startHardeningProxy();
});
afterAll(async () => {
  await proxy?.close();
});

/** Sends `headers` raw to the node's /api/headers and returns what the node received. */
async function headersSeenByNode(headers: string, path = '/api/headers'): Promise<Record<string, string>> {
  const node = proxy.nodes[0];
  const seenBefore = node?.seen.length ?? 0;
  const { response } = await rawExchange(
    proxy.port,
    `GET ${path} HTTP/1.1\r\nHost: lb.test\r\n${headers}Connection: close\r\n\r\n`,
  );
  expect(response?.status).toBe(200);
  expect(node?.seen.length).toBe(seenBefore + 1);
  return node?.seen.at(-1)?.headers as Record<string, string>;
}

describe('client-sent headers', () => {
  it.each([
    'x-stickylb-session: forged',
    'X-StickyLB-Session: forged',
    'x_stickylb_session: forged',
    'X-STICKYLB-SESSION-USED: 99',
    'x-stickylb-secret: guess',
    'X_StickyLB_Secret: guess',
    'x-stickylb-session-new: 0',
  ])('strips %s and sets its own session headers', async (line) => {
    const seen = await headersSeenByNode(`${line}\r\n`);
    const internal = Object.keys(seen).filter((name) => /^x[-_]stickylb[-_]/i.test(name));
    // No cookie: the id is minted for this request, and the node is told so.
    expect(internal.sort()).toEqual(['x-stickylb-session', 'x-stickylb-session-new']);
    expect(seen['x-stickylb-session']).toMatch(/^[A-Za-z0-9_-]{22}\./);
    expect(seen['x-stickylb-session-new']).toBe('1');
  });

  it('marks only the request its id was minted for as new; a client cannot claim it', async () => {
    const { response } = await rawExchange(
      proxy.port,
      'GET /api/session HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n',
    );
    const cookie = String(response?.headers['set-cookie']).split(';')[0] as string;
    expect(cookie).toMatch(/^SESSIONID=/);
    const node = proxy.nodes.find((candidate) =>
      candidate.seen.some((seen) => seen.headers['x-stickylb-session'] === cookie.slice(10)),
    );
    // Keep-alive and close alike (fetch keeps its connection, the raw exchange closes it).
    const sends = [
      () =>
        rawExchange(
          proxy.port,
          `GET /api/headers HTTP/1.1\r\nHost: lb.test\r\nCookie: ${cookie}\r\n` +
            'x-stickylb-session-new: 1\r\nConnection: close\r\n\r\n',
        ),
      () =>
        fetch(`http://127.0.0.1:${proxy.port}/api/headers`, {
          headers: { cookie, 'x-stickylb-session-new': '1' },
        }).then((answer) => answer.text()),
    ];
    for (const send of sends) {
      const seenBefore = node?.seen.length ?? 0;
      await send();
      expect(node?.seen.length).toBe(seenBefore + 1);
      const seen = node?.seen.at(-1)?.headers as Record<string, string>;
      expect(seen['x-stickylb-session']).toBe(cookie.slice(10));
      expect(seen['x-stickylb-session-new']).toBeUndefined();
    }
  });

  it('replaces X-Forwarded-For/-Proto/-Host and drops Forwarded from an untrusted client', async () => {
    const seen = await headersSeenByNode(
      'X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\n' +
        'Forwarded: for=6.6.6.6;proto=https;host=evil.test\r\nx-forwarded-for: 7.7.7.7\r\n',
    );
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe('lb.test');
    expect(seen.forwarded).toBeUndefined();
  });

  it('strips hop-by-hop headers and every header listed in Connection', async () => {
    const seen = await headersSeenByNode(
      'Keep-Alive: timeout=600\r\nTE: trailers\r\nTrailer: x-t\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n' +
        'Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-Listed: 1\r\nX-Also-Listed: 2\r\nX-Kept: 3\r\n' +
        'Connection: x-listed, X-ALSO-LISTED\r\n',
    );
    for (const name of ['keep-alive', 'te', 'trailer', 'proxy-authorization', 'proxy-connection', 'upgrade'])
      expect(seen[name]).toBeUndefined();
    expect(seen['x-listed']).toBeUndefined();
    expect(seen['x-also-listed']).toBeUndefined();
    expect(seen['x-kept']).toBe('3');
    // The connection header the node sees is our agent's, not the client's.
    expect(seen.connection).toBe('keep-alive');
  });

  it('sets its own headers after stripping those listed in Connection', async () => {
    const seen = await headersSeenByNode(
      'X-Stickylb-Session: forged\r\nX-Forwarded-For: 6.6.6.6\r\n' +
        'Connection: x-stickylb-session, x-forwarded-for, x-forwarded-host\r\n',
    );
    expect(seen['x-stickylb-session']).toMatch(/^[A-Za-z0-9_-]{22}\./);
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-host']).toBe('lb.test');
  });

  it('keeps Host and a body’s length when a client lists them in Connection', async () => {
    const node = proxy.nodes[0];
    const { response } = await rawExchange(
      proxy.port,
      'POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 11\r\nConnection: close, content-length, host\r\n\r\nhello world',
    );
    expect(response?.status).toBe(200);
    expect(JSON.parse(response?.body ?? '{}')).toEqual({ bytes: 11 });
    const seen = node?.seenOn('/upload').at(-1);
    expect(seen?.headers.host).toBe('lb.test');
    expect(seen?.headers['content-length']).toBe('11');
  });

  it('never passes a node’s internal x-stickylb-* headers on to the client', async () => {
    // A chunked body sends the request to the full path; fetch's plain GET takes the fast path.
    const { response } = await rawExchange(
      proxy.port,
      'POST /api/internal-headers HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n' +
        'Connection: close\r\n\r\n0\r\n\r\n',
    );
    expect(response?.status).toBe(200);
    const fetched = await fetch(`http://127.0.0.1:${proxy.port}/api/internal-headers`);
    expect(fetched.status).toBe(200);
    await fetched.text();
    for (const names of [Object.keys(response?.headers ?? {}), [...fetched.headers.keys()]]) {
      expect(names).toContain('content-type');
      expect(names.filter((name) => /^x[-_]stickylb[-_]/i.test(name))).toEqual([]);
    }
  });

  it('answers the client with its own Connection terms, never the node’s', async () => {
    // The node keeps its socket to the proxy alive; the client asked to close: it is closed.
    const { response, closed } = await rawExchange(
      proxy.port,
      'GET /api/headers HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n',
    );
    expect(response?.headers.connection).toBe('close');
    expect(response?.headers['keep-alive']).toBeUndefined();
    expect(closed).toBe(true);
  });
});
