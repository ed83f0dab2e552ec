import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../integration/harness.js';
import { isServing, startHardeningProxy, type HardeningProxy } from './proxy-fixture.js';
import { RawConnection } from './raw-client.js';

/*
 * A connection flood past `proxy.maxConnections`: connections over the limit are closed at
 * once, unserved, so the proxy's memory stays bounded by the limit; those within it are
 * served, and a normal client gets in again as soon as connections free up.
 */
const MAX_CONNECTIONS = 20;

let proxy: HardeningProxy;

beforeAll(async () => {
  proxy = await startHardeningProxy({
    // Headers timeout long enough that the held connections outlive the test's steps.
    proxy: { maxConnections: MAX_CONNECTIONS, timeouts: { headers: '20s', request: '25s' } },
  });
});
afterAll(async () => {
  await proxy?.close();
});

/** The proxy's refused-connection counter, read from /metrics (refreshed after a short snapshot). */
async function refused(): Promise<number> {
  return Number(/stickylb_proxy_refused_connections_total (\d+)/.exec(await proxy.metrics())?.[1]);
}

describe('connection flood beyond proxy.maxConnections', () => {
  it('closes connections past the limit unserved, and serves again once some close', async () => {
    const held = Array.from({ length: MAX_CONNECTIONS }, () => new RawConnection(proxy.port));
    const flood: RawConnection[] = [];
    try {
      await Promise.all(held.map((connection) => connection.connected()));
      await waitFor(async () => (await proxy.connections()) === MAX_CONNECTIONS);
      const refusedBefore = await refused();

      // 300 more, each sending a whole request: none is served, none stays open.
      for (let i = 0; i < 300; i++) flood.push(new RawConnection(proxy.port));
      await Promise.all(
        flood.map((connection) =>
          connection
            .write('GET /flood HTTP/1.1\r\nHost: lb.test\r\n\r\n')
            .catch(() => undefined /* reset before the write: refused, as expected */),
        ),
      );
      await waitFor(() => flood.every((connection) => connection.isClosed));
      for (const connection of flood) expect(connection.received).toBe('');
      expect(await proxy.connections()).toBeLessThanOrEqual(MAX_CONNECTIONS);
      expect(proxy.nodes[0]?.seenOn('/flood')).toEqual([]);
      await waitFor(async () => (await refused()) >= refusedBefore + 300);

      // The held connections were accepted: they are still served.
      const first = held[0] as RawConnection;
      await first.write('GET /held HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n');
      expect((await first.readResponse())?.status).toBe(200);
      await first.waitForClose();

      // A slot freed: a normal client is served again.
      await waitFor(async () => (await proxy.connections()) < MAX_CONNECTIONS);
      expect(await isServing(proxy)).toBe(true);
    } finally {
      for (const connection of [...held, ...flood]) connection.destroy();
    }
    await waitFor(async () => (await proxy.connections()) === 0);
  });
});
