import { afterEach, describe, expect, it } from 'vitest';
import type { ProxyCounters } from '../../src/proxy/proxy-counters.js';
import { parseResponse, RawConnection } from '../hardening/raw-client.js';
import { startCluster, waitFor, type Cluster } from './harness.js';

/*
 * Failover on the fast path, with real node processes killed -9: a client's keep-alive
 * connection stays on the fast path through the failover (its requests are replayed or moved
 * there, not handed to the full path), and the session keeps its counter.
 */
let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

async function counters(c: Cluster): Promise<ProxyCounters> {
  return ((await (await fetch(`${c.adminUrl}/api/state`)).json()) as { proxy: ProxyCounters }).proxy;
}

/** The counters once workers have reported (every 250 ms): a baseline for a difference. */
async function settledCounters(c: Cluster): Promise<ProxyCounters> {
  await new Promise((resolve) => setTimeout(resolve, 600));
  return counters(c);
}

/** One request on `client`'s connection; the answer's status and JSON body. */
async function send(client: RawConnection, method: string, cookie: string | undefined): Promise<any> {
  client.received = '';
  const cookieLine = cookie === undefined ? '' : `Cookie: ${cookie}\r\n`;
  await client.write(`${method} /api/counter HTTP/1.1\r\nHost: lb.test\r\n${cookieLine}\r\n`);
  await client.waitFor((text) => parseResponse(text) !== undefined);
  const answer = parseResponse(client.received);
  return { status: answer?.status, headers: answer?.headers, json: JSON.parse(answer?.body ?? 'null') };
}

describe('failover on the fast path', () => {
  it('kill -9 the session node: the next request on the same connection moves on the fast path, counter intact', async () => {
    // Health checks far apart: the proxy learns of the death from the refused connection.
    cluster = await startCluster({ config: { health: { interval: '5s', timeout: '1s' } } });
    const c = cluster;
    const client = new RawConnection(Number(new URL(c.proxyUrl).port));
    const first = await send(client, 'POST', undefined);
    expect(first.status).toBe(200);
    const cookie = String(first.headers['set-cookie']).split(';')[0];
    expect((await send(client, 'POST', cookie)).json.count).toBe(2);
    const before = await settledCounters(c);
    const victim = c.nodes.find((node) => node.id === first.json.node);
    await victim?.kill();
    // A GET: whether the proxy meets the dead node on its pooled connection (reset: sent again
    // on a new one) or on a new one (refused), it moves on the fast path.
    const after = await send(client, 'GET', cookie);
    expect(after.status).toBe(200);
    expect(after.json.node).not.toBe(first.json.node);
    expect(after.json.count).toBe(2);
    expect((await send(client, 'POST', cookie)).json).toMatchObject({ node: after.json.node, count: 3 });
    // Both answers relayed by the fast path: the connection was never handed to the full path.
    await waitFor(async () => (await counters(c)).fastPathRequests - before.fastPathRequests === 2);
    expect((await counters(c)).retries - before.retries).toBeGreaterThanOrEqual(1);
    client.destroy();
  });

  it('a session whose node is marked down moves, state and all, on the fast path', async () => {
    cluster = await startCluster();
    const c = cluster;
    const client = new RawConnection(Number(new URL(c.proxyUrl).port));
    const first = await send(client, 'POST', undefined);
    const cookie = String(first.headers['set-cookie']).split(';')[0];
    const victim = c.nodes.find((node) => node.id === first.json.node);
    await victim?.kill();
    await waitFor(() => c.lb.registry.get(first.json.node)?.isHealthy === false);
    const before = await settledCounters(c);
    const moved = await send(client, 'GET', cookie);
    expect(moved.status).toBe(200);
    expect(moved.json.node).not.toBe(first.json.node);
    expect(moved.json.count).toBe(1);
    // The cookie is re-issued with the new route.
    expect(String(moved.headers['set-cookie'])).toMatch(/^SESSIONID=/);
    await waitFor(async () => (await counters(c)).fastPathRequests - before.fastPathRequests === 1);
    client.destroy();
  });
});
