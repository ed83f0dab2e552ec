import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../integration/harness.js';
import { isServing, startHardeningProxy, type HardeningProxy } from './proxy-fixture.js';
import { RawConnection } from './raw-client.js';

/*
 * A client that leaves mid-upload, before the answer, or mid-response: the proxy destroys
 * its request to the node at once (the node sees it aborted and its socket closed), so no
 * upstream request is left open and the node's in-flight count returns to zero. The demo
 * node's version of mid-response is in test/integration/proxy.test.ts.
 */
let proxy: HardeningProxy;

beforeAll(async () => {
  proxy = await startHardeningProxy();
});
afterAll(async () => {
  await proxy?.close();
});

/** Waits until the node's last request on `path` has been received, then returns it. */
async function arrived(path: string, count: number): Promise<void> {
  await waitFor(() => (proxy.nodes[0]?.seenOn(path).length ?? 0) >= count);
}

async function expectNothingLeftOpen(path: string): Promise<void> {
  const node = proxy.nodes[0];
  await waitFor(() => node?.inFlight === 0);
  expect(node?.seenOn(path).at(-1)).toMatchObject({ isAborted: true });
  await waitFor(() => proxy.inFlight() === 0);
  // The upstream socket that carried it was destroyed, not returned to the pool half-used.
  await waitFor(() => node?.seenOn(path).at(-1)?.isSocketClosed);
  await waitFor(async () => (await proxy.connections()) === 0);
  expect(await isServing(proxy)).toBe(true);
}

describe('client aborts', () => {
  it('destroys the upstream request when the client leaves mid-upload', async () => {
    const node = proxy.nodes[0];
    const client = new RawConnection(proxy.port);
    await client.write(
      `POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 100000\r\n\r\n${'u'.repeat(1000)}`,
    );
    await arrived('/upload', 1);
    await waitFor(() => (node?.seenOn('/upload').at(-1)?.bodyBytes ?? 0) > 0);
    client.destroy();
    await expectNothingLeftOpen('/upload');
    expect(node?.seenOn('/upload').at(-1)).toMatchObject({ isComplete: false });
  });

  it('destroys the upstream request when the client leaves before the answer', async () => {
    const client = new RawConnection(proxy.port);
    await client.write('GET /hold HTTP/1.1\r\nHost: lb.test\r\n\r\n');
    await arrived('/hold', 1);
    client.destroy();
    await expectNothingLeftOpen('/hold');
  });

  it('destroys the upstream request when the client leaves mid-response', async () => {
    const client = new RawConnection(proxy.port);
    await client.write('GET /stream HTTP/1.1\r\nHost: lb.test\r\n\r\n');
    await client.waitFor((text) => text.includes('chunk 1'));
    client.destroy();
    await expectNothingLeftOpen('/stream');
  });

  it('counts responses the client left in stickylb_proxy_client_aborts_total', async () => {
    const metric = async (): Promise<number> =>
      Number(/stickylb_proxy_client_aborts_total (\d+)/.exec(await proxy.metrics())?.[1]);
    const before = await metric();
    const client = new RawConnection(proxy.port);
    await client.write('GET /stream HTTP/1.1\r\nHost: lb.test\r\n\r\n');
    await client.waitFor((text) => text.includes('chunk 1'));
    client.destroy();
    await waitFor(async () => (await metric()) === before + 1);
  });

  it('survives 50 clients aborting at once mid-upload', async () => {
    const node = proxy.nodes[0];
    const seenBefore = node?.seenOn('/upload').length ?? 0;
    const clients = Array.from({ length: 50 }, () => new RawConnection(proxy.port));
    await Promise.all(
      clients.map((client) =>
        client.write(
          `POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 100000\r\n\r\n${'u'.repeat(100)}`,
        ),
      ),
    );
    await arrived('/upload', seenBefore + 50);
    for (const client of clients) client.destroy();
    await waitFor(() => node?.inFlight === 0);
    await waitFor(() => node?.seenOn('/upload').every((seen) => seen.isSocketClosed));
    for (const seen of node?.seenOn('/upload').slice(seenBefore) ?? [])
      expect(seen).toMatchObject({ isComplete: false, isAborted: true });
    await waitFor(() => proxy.inFlight() === 0);
    await waitFor(async () => (await proxy.connections()) === 0);
    expect(await isServing(proxy)).toBe(true);
  });
});
