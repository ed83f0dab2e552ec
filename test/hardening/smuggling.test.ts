import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../integration/harness.js';
import { isServing, startHardeningProxy, type HardeningProxy } from './proxy-fixture.js';
import { rawExchange } from './raw-client.js';

/*
 * Request smuggling (RFC 9112 §6.3, §11.2): a proxy and a node that disagree on where a
 * request ends let a client hide a second request inside the first. Every ambiguous framing
 * must be refused by the proxy with 400 and a closed connection, and never reach a node.
 * Each case carries a hidden `GET /smuggled` that a confused parser would see as a request.
 */
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: lb.test\r\n\r\n';

const cases: Array<[string, string]> = [
  [
    'Content-Length and Transfer-Encoding together',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  ],
  [
    'Transfer-Encoding and Content-Length together (TE first)',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\nContent-Length: ${SMUGGLED.length + 5}\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  ],
  [
    'two different Content-Length headers',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  ],
  [
    'two equal Content-Length headers',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nbody${SMUGGLED}`,
  ],
  ['a Content-Length list', `POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 4, 4\r\n\r\nbody`],
  ['a signed Content-Length', `POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: +4\r\n\r\nbody`],
  [
    'a hexadecimal Content-Length',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 0x4\r\n\r\nbody`,
  ],
  [
    'Transfer-Encoding: chunked, gzip (chunked not last)',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  ],
  [
    'Transfer-Encoding: gzip alone (no chunked)',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: gzip\r\n\r\n${SMUGGLED}`,
  ],
  [
    'two Transfer-Encoding headers, chunked first',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  ],
  [
    'an unknown transfer coding (xchunked)',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  ],
  ['bare LF line endings', `GET /upload HTTP/1.1\nHost: lb.test\n\n${SMUGGLED}`],
  [
    'a bare LF inside the header block',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nX-A: 1\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  ],
  [
    'an obs-fold continuation line',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nX-A: 1\r\n Content-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  ],
  [
    'an obs-fold on Transfer-Encoding',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  ],
  ['a NUL in a header value', `GET /upload HTTP/1.1\r\nHost: lb.test\r\nX-A: a\0b\r\n\r\n`],
  ['a NUL in the request target', `GET /up\0load HTTP/1.1\r\nHost: lb.test\r\n\r\n`],
  [
    'a space before the colon',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length : ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  ],
  [
    'a tab before the colon on Transfer-Encoding',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  ],
  ['a header name with a space inside', `GET /upload HTTP/1.1\r\nHost: lb.test\r\nX A: 1\r\n\r\n`],
  ['a control character in a header name', `GET /upload HTTP/1.1\r\nHost: lb.test\r\nX\x01A: 1\r\n\r\n`],
  ['a space inside the request target', `GET /up load HTTP/1.1\r\nHost: lb.test\r\n\r\n`],
  ['an unknown HTTP version', `GET /upload HTTP/1.7\r\nHost: lb.test\r\n\r\n`],
  ['a request line with a bare CR', `GET /upload HTTP/1.1\rHost: lb.test\r\n\r\n`],
];

/*
 * Malformed chunked bodies: the head is valid, so the request may already be on its way to
 * the node when the parser meets the bad chunk. The node must then see it cut off, never
 * complete, and never the hidden request.
 */
const bodyCases: Array<[string, string]> = [
  [
    'a chunk size that is not hexadecimal',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`,
  ],
  [
    'a chunk longer than its size',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n${SMUGGLED}`,
  ],
  [
    'a chunk size with a bare LF',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n${SMUGGLED}`,
  ],
  [
    'a chunk size overflowing 64 bits',
    `POST /upload HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n1${'0'.repeat(16)}5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`,
  ],
];

let proxy: HardeningProxy;

beforeAll(async () => {
  proxy = await startHardeningProxy();
});
afterAll(async () => {
  await proxy?.close();
});

describe('request smuggling shapes', () => {
  it.each(cases)('refuses %s with 400, closes, and forwards nothing', async (_name, bytes) => {
    const node = proxy.nodes[0];
    const seenBefore = node?.seen.length ?? 0;
    const { response, closed } = await rawExchange(proxy.port, bytes);
    expect(response?.status).toBe(400);
    expect(JSON.parse(response?.body ?? '{}')).toMatchObject({ error: 'SLB_BAD_REQUEST' });
    expect(closed).toBe(true);
    // Never forwarded: neither the outer request nor the hidden one reached the node.
    expect(node?.seen.length).toBe(seenBefore);
    expect(node?.seenOn('/smuggled')).toEqual([]);
    expect(await isServing(proxy)).toBe(true);
    expect(proxy.inFlight()).toBe(0);
    await waitFor(async () => (await proxy.connections()) === 0);
  });

  it.each(bodyCases)('refuses %s with 400 and the node never gets it whole', async (_name, bytes) => {
    const node = proxy.nodes[0];
    const seenBefore = node?.seen.length ?? 0;
    const { response, closed } = await rawExchange(proxy.port, bytes);
    expect(response?.status).toBe(400);
    expect(closed).toBe(true);
    // Forwarded at most as far as the bad chunk, then aborted.
    await waitFor(() => node?.inFlight === 0);
    for (const seen of node?.seen.slice(seenBefore) ?? []) expect(seen).toMatchObject({ isComplete: false });
    expect(node?.seenOn('/smuggled')).toEqual([]);
    expect(await isServing(proxy)).toBe(true);
    expect(proxy.inFlight()).toBe(0);
    await waitFor(async () => (await proxy.connections()) === 0);
  });

  it('frames a well-formed chunked upload exactly (control case)', async () => {
    const node = proxy.nodes[0];
    const { response } = await rawExchange(
      proxy.port,
      'POST /upload HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
        '5\r\nhello\r\n0\r\n\r\n',
    );
    expect(response?.status).toBe(200);
    expect(JSON.parse(response?.body ?? '{}')).toEqual({ bytes: 5 });
    expect(node?.seenOn('/upload').at(-1)).toMatchObject({ isComplete: true, bodyBytes: 5 });
  });
});
