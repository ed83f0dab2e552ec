import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHardeningProxy, type HardeningProxy } from './proxy-fixture.js';
import { rawExchange } from './raw-client.js';

/*
 * A request whose session's node is down is held while the session moves (an await on the
 * failover manager). Its body keeps arriving meanwhile: it must reach the new node whole,
 * not be lost to the replay buffer while the request waited.
 */
describe('a request with a body for a session whose node is down', () => {
  let proxy: HardeningProxy;

  beforeAll(async () => {
    proxy = await startHardeningProxy({ nodeCount: 2 });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('moves the session and forwards the whole body to the new node', async () => {
    const created = await fetch(`${proxy.url}/api/session`);
    const cookie = (created.headers.get('set-cookie') ?? '').split(';')[0] as string;
    expect(cookie).toMatch(/=/);
    const victim = proxy.nodes.findIndex((node) => node.seenOn('/api/session').length > 0);
    const survivor = proxy.nodes[1 - victim];
    // Down for the router at once, before the health checker's own verdict (and the
    // failover it starts) could move the session first: this request has to move it.
    await proxy.nodes[victim]?.close();
    proxy.lb.registry.setHealthy(`node-${victim + 1}`, false);

    const body = 'x'.repeat(100_000);
    const { response } = await rawExchange(
      proxy.port,
      `POST /upload HTTP/1.1\r\nHost: lb.test\r\nCookie: ${cookie}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(response?.status).toBe(200);
    expect(JSON.parse(response?.body ?? '{}')).toEqual({ bytes: body.length });
    expect(survivor?.seenOn('/upload')).toHaveLength(1);
    // Re-pinned: the moved session's cookie is issued again.
    expect(response?.headers['set-cookie']).toBeDefined();
  });
});
