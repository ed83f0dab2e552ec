import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isServing, startHardeningProxy, type HardeningProxy } from './proxy-fixture.js';
import { RawConnection } from './raw-client.js';

/*
 * Node hands every `Connection: Upgrade` request to the proxy's upgrade handler, not only
 * WebSocket handshakes. Anything else gets a JSON 400 instead of a closed socket.
 */
let proxy: HardeningProxy;

beforeAll(async () => {
  proxy = await startHardeningProxy();
});
afterAll(async () => {
  await proxy?.close();
});

describe('upgrades other than a WebSocket handshake', () => {
  it.each([
    [
      'h2c, as curl --http2 asks',
      'GET',
      'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA',
    ],
    ['a WebSocket asked by POST', 'POST', 'Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0'],
  ])('%s: JSON 400 naming what is proxied, never reaching a node', async (_, method, headers) => {
    const path = `/upgrade-${method}`;
    const client = new RawConnection(proxy.port);
    await client.write(`${method} ${path} HTTP/1.1\r\nHost: lb.test\r\n${headers}\r\n\r\n`);
    const response = await client.readResponse();
    client.destroy();
    expect(response?.status).toBe(400);
    expect(JSON.parse(response?.body ?? '')).toMatchObject({
      error: 'SLB_BAD_REQUEST',
      message: expect.stringContaining('WebSocket'),
    });
    expect(proxy.nodes[0]?.seenOn(path)).toHaveLength(0);
    expect(await isServing(proxy)).toBe(true);
  });
});
