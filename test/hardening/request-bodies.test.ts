import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../integration/harness.js';
import { isServing, startHardeningProxy, type HardeningProxy } from './proxy-fixture.js';
import { RawConnection } from './raw-client.js';

/*
 * Bodies that end in the same packet as the request head. A chunked body with no data
 * (`0\r\n\r\n` right after the head) is what a streaming upload that turned out empty sends
 * (fetch with an empty stream, Go's client with a body of unknown length).
 */
let proxy: HardeningProxy;

beforeAll(async () => {
  proxy = await startHardeningProxy();
});
afterAll(async () => {
  await proxy?.close();
});

describe('request bodies that end with their head', () => {
  it.each([
    ['POST', 'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 0],
    ['GET', 'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 0],
    ['POST', 'Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', 3],
    ['POST', 'Content-Length: 3\r\n\r\nabc', 3],
  ])('%s with %j reaches the node and is answered', async (method, rest, bytes) => {
    const path = `/empty-${method}-${bytes}-${rest.length}`;
    const client = new RawConnection(proxy.port);
    await client.write(`${method} ${path} HTTP/1.1\r\nHost: lb.test\r\n${rest}`);
    const response = await client.readResponse();
    client.destroy();
    expect(response?.status).toBe(200);
    expect(proxy.nodes[0]?.seenOn(path).at(-1)).toMatchObject({ isComplete: true, bodyBytes: bytes });
    await waitFor(() => proxy.inFlight() === 0);
    expect(await isServing(proxy)).toBe(true);
  });
});
