import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHardeningProxy, type HardeningProxy } from './proxy-fixture.js';
import { rawExchange } from './raw-client.js';

/*
 * A request whose session's node is down is held while the session moves (an await on the
 * failover manager). Its body keeps arriving meanwhile: it must reach the new node whole,
 * not be lost to the replay buffer while the request waited.
 */
describe.each([
  { limit: 'within', maxBodyBytes: undefined },
  // Over the replay limit: it cannot be kept for a replay, yet still reaches the new node.
  { limit: 'over', maxBodyBytes: 10_000 },
])(
  'a request with a body for a session whose node is down ($limit proxy.maxBodyBytes)',
  ({ maxBodyBytes }) => {
    let proxy: HardeningProxy;

    beforeAll(async () => {
      proxy = await startHardeningProxy({
        nodeCount: 2,
        proxy: maxBodyBytes === undefined ? {} : { maxBodyBytes },
      });
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
  },
);

/*
 * A new session's POST picked a node that refuses the connection (its listener closed, the
 * health checks not yet aware). The proxy replays it on another node: the body the client
 * sent must arrive there whole. undici had never read the body from the client, so the
 * replay has to wait until every chunk is read, not merely received by the parser.
 */
describe('a POST replayed after its node refused the connection', () => {
  let proxy: HardeningProxy;

  beforeAll(async () => {
    proxy = await startHardeningProxy({ nodeCount: 2 });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('reaches the other node with its whole body', async () => {
    await proxy.nodes[0]?.close();
    const body = 'y'.repeat(5_000);
    const answers: Array<{ status?: number; body?: string }> = [];
    // New sessions take turns between the nodes: within two requests one is sent to the closed node.
    for (let i = 0; i < 2; i++) {
      const { response } = await rawExchange(
        proxy.port,
        `POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
      answers.push({ status: response?.status, body: response?.body });
    }
    expect(proxy.lb.proxy.counters.retries).toBeGreaterThanOrEqual(1);
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body ?? '{}')).toEqual({ bytes: body.length });
    }
    expect(proxy.nodes[1]?.seenOn('/upload')).toHaveLength(2);
  });
});
