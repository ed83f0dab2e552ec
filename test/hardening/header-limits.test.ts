import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../integration/harness.js';
import { isServing, startHardeningProxy, type HardeningProxy } from './proxy-fixture.js';
import { rawExchange } from './raw-client.js';

/*
 * Header limits and Host rules (RFC 9112 §3.2): over the size or count limit → 431; no
 * Host, several, a malformed one, or an absolute-form target naming another authority →
 * 400. Each is answered by the proxy, the connection closed, and the node never sees it.
 */
const MAX_HEADER_BYTES = 4096;
const MAX_HEADER_COUNT = 20;

const lines = (count: number): string =>
  Array.from({ length: count }, (_, index) => `X-H${index}: v\r\n`).join('');

const cases: Array<[string, string, number]> = [
  [
    'one header over maxHeaderBytes',
    `GET /limits HTTP/1.1\r\nHost: lb.test\r\nX-Big: ${'a'.repeat(MAX_HEADER_BYTES)}\r\n\r\n`,
    431,
  ],
  [
    'many small headers over maxHeaderBytes',
    `GET /limits HTTP/1.1\r\nHost: lb.test\r\n${Array.from({ length: 200 }, (_, i) => `X-${i}: ${'b'.repeat(30)}\r\n`).join('')}\r\n`,
    431,
  ],
  [
    'a request target over maxHeaderBytes',
    `GET /limits?${'q'.repeat(MAX_HEADER_BYTES)} HTTP/1.1\r\nHost: lb.test\r\n\r\n`,
    431,
  ],
  [
    'one header line over maxHeaderCount',
    `GET /limits HTTP/1.1\r\nHost: lb.test\r\n${lines(MAX_HEADER_COUNT)}\r\n`,
    431,
  ],
  [
    '3 000 header lines (past Node’s own 2 000, which it would drop silently)',
    `GET /limits HTTP/1.1\r\nHost: lb.test\r\n${Array.from({ length: 3000 }, () => 'a:\r\n').join('')}\r\n`,
    431,
  ],
  ['two Host headers', `GET /limits HTTP/1.1\r\nHost: lb.test\r\nHost: evil.test\r\n\r\n`, 400],
  [
    'two Host headers with the same value',
    `GET /limits HTTP/1.1\r\nHost: lb.test\r\nhost: lb.test\r\n\r\n`,
    400,
  ],
  ['no Host on HTTP/1.1', `GET /limits HTTP/1.1\r\nX-A: 1\r\n\r\n`, 400],
  ['a Host with a path in it', `GET /limits HTTP/1.1\r\nHost: lb.test/evil\r\n\r\n`, 400],
  ['a Host with userinfo', `GET /limits HTTP/1.1\r\nHost: user@lb.test\r\n\r\n`, 400],
  ['a Host with a space', `GET /limits HTTP/1.1\r\nHost: lb.test evil.test\r\n\r\n`, 400],
  [
    'an absolute-form target naming another host',
    `GET http://evil.test/limits HTTP/1.1\r\nHost: lb.test\r\n\r\n`,
    400,
  ],
  [
    'an absolute-form target naming another port',
    `GET http://lb.test:81/limits HTTP/1.1\r\nHost: lb.test\r\n\r\n`,
    400,
  ],
  [
    'an absolute-form target with userinfo',
    `GET http://user@lb.test/limits HTTP/1.1\r\nHost: lb.test\r\n\r\n`,
    400,
  ],
  [
    'an absolute-form target of another scheme',
    `GET ftp://lb.test/limits HTTP/1.1\r\nHost: lb.test\r\n\r\n`,
    400,
  ],
  [
    'an asterisk-form target (OPTIONS *), which the upstream client cannot send',
    `OPTIONS * HTTP/1.1\r\nHost: lb.test\r\n\r\n`,
    400,
  ],
];

let proxy: HardeningProxy;

beforeAll(async () => {
  proxy = await startHardeningProxy({
    proxy: { maxHeaderBytes: MAX_HEADER_BYTES, maxHeaderCount: MAX_HEADER_COUNT },
  });
});
afterAll(async () => {
  await proxy?.close();
});

describe('header limits and Host rules', () => {
  it.each(cases)('refuses %s', async (_name, bytes, status) => {
    const node = proxy.nodes[0];
    const seenBefore = node?.seen.length ?? 0;
    const { response, closed } = await rawExchange(proxy.port, bytes);
    expect(response?.status).toBe(status);
    expect(JSON.parse(response?.body ?? '{}')).toMatchObject({
      error: status === 431 ? 'SLB_HEADERS_TOO_LARGE' : 'SLB_BAD_REQUEST',
    });
    expect(closed).toBe(true);
    expect(node?.seen.length).toBe(seenBefore);
    expect(await isServing(proxy)).toBe(true);
    await waitFor(async () => (await proxy.connections()) === 0);
  });

  it.each([
    [
      'exactly maxHeaderCount header lines',
      `GET /limits HTTP/1.1\r\nHost: lb.test\r\n${lines(MAX_HEADER_COUNT - 2)}Connection: close\r\n\r\n`,
    ],
    [
      'an absolute-form target naming the Host',
      `GET http://LB.test:80/limits HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n`,
    ],
    ['HTTP/1.0 without Host', `GET /limits HTTP/1.0\r\n\r\n`],
    [
      'a Host with a port and an IPv6 literal',
      `GET /limits HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n`,
    ],
  ])('forwards %s (control case)', async (_name, bytes) => {
    const node = proxy.nodes[0];
    const seenBefore = node?.seen.length ?? 0;
    const { response } = await rawExchange(proxy.port, bytes);
    expect(response?.status).toBe(200);
    expect(node?.seen.length).toBe(seenBefore + 1);
    expect(node?.seen.at(-1)?.url).toBe('/limits');
  });

  it('refuses a WebSocket upgrade with two Host headers before it reaches a node', async () => {
    const node = proxy.nodes[0];
    const seenBefore = node?.seen.length ?? 0;
    const { response, closed } = await rawExchange(
      proxy.port,
      'GET /ws HTTP/1.1\r\nHost: lb.test\r\nHost: evil.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(response?.status).toBe(400);
    expect(closed).toBe(true);
    expect(node?.seen.length).toBe(seenBefore);
  });

  it('counts refused requests in stickylb_proxy_errors_total{code="client_error"}', async () => {
    const count = async (): Promise<number> =>
      Number(/stickylb_proxy_errors_total\{code="client_error"\} (\d+)/.exec(await proxy.metrics())?.[1]);
    const before = await count();
    await rawExchange(proxy.port, 'GET /limits HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
    // The admin snapshots its counters for a moment: wait for the next one.
    await waitFor(async () => (await count()) === before + 1);
  });
});
