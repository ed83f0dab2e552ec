import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../integration/harness.js';
import { isServing, startHardeningProxy, type HardeningProxy } from './proxy-fixture.js';
import { RawConnection } from './raw-client.js';
import { LARGE_BYTES } from './recording-node.js';

/*
 * Slow and idle clients (slowloris, slow POST, parked keep-alive, half-open floods) are cut
 * at the configured timeouts with 408 (or closed when idle between requests), while normal
 * clients keep being served. Small timeouts keep this quick; nothing asserts how long
 * anything took, only what happened within a generous bound.
 */
const HEADERS_MS = 300;
const REQUEST_MS = 800;
const IDLE_MS = 300;
/** Bound on waiting for a timeout to act: far above the timeouts, far below the test timeout. */
const WITHIN_MS = 8000;
/** A body past the fast path's 64 KiB buffer: streamed to the node by the full path. */
const STREAMED_BYTES = 100_000;

let proxy: HardeningProxy;

beforeAll(async () => {
  proxy = await startHardeningProxy({
    proxy: { timeouts: { headers: HEADERS_MS, request: REQUEST_MS, idle: IDLE_MS } },
  });
});
afterAll(async () => {
  await proxy?.close();
});

/** Writes `text` a few bytes at a time, 50 ms apart, stopping when the peer closes. */
async function dribble(connection: RawConnection, text: string, maxChunks: number): Promise<void> {
  for (let i = 0; i < Math.min(maxChunks, text.length) && !connection.isClosed; i++) {
    await connection.write(text.slice(i, i + 1));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('slow and idle clients', () => {
  it('answers 408 to headers that never finish, and serves others meanwhile', async () => {
    const slow = new RawConnection(proxy.port);
    await slow.write('GET /slow-headers HTTP/1.1\r\nHost: lb.test\r\n');
    expect(await isServing(proxy)).toBe(true);
    expect(await slow.waitForClose(WITHIN_MS)).toBe(true);
    expect(slow.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(slow.received).toContain('"error":"SLB_REQUEST_TIMEOUT"');
    expect(proxy.nodes[0]?.seenOn('/slow-headers')).toEqual([]);
  });

  it('answers 408 to headers sent a byte at a time (slowloris)', async () => {
    const slow = new RawConnection(proxy.port);
    // A byte every 50 ms keeps the socket busy, but the head is never complete in time.
    await dribble(slow, `GET /slowloris HTTP/1.1\r\nHost: lb.test\r\nX-Pad: ${'p'.repeat(200)}\r\n\r\n`, 200);
    expect(await slow.waitForClose(WITHIN_MS)).toBe(true);
    expect(slow.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(proxy.nodes[0]?.seenOn('/slowloris')).toEqual([]);
  });

  it('answers 408 to a small body that never finishes; the node never sees it (buffered)', async () => {
    const node = proxy.nodes[0];
    const slow = new RawConnection(proxy.port);
    // Within the fast path's 64 KiB buffer: held until whole, as nginx does by default.
    await slow.write('POST /upload-small HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 1000\r\n\r\nstart');
    await dribble(slow, 'x'.repeat(200), 200);
    expect(await slow.waitForClose(WITHIN_MS)).toBe(true);
    expect(slow.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(slow.received).toContain('"error":"SLB_REQUEST_TIMEOUT"');
    expect(node?.seenOn('/upload-small')).toEqual([]);
    expect(proxy.inFlight()).toBe(0);
  });

  it('answers 408 to a large body that never finishes and aborts the request on the node', async () => {
    const node = proxy.nodes[0];
    const slow = new RawConnection(proxy.port);
    // Past the fast path's buffer: streamed to the node as it arrives (the full path).
    await slow.write(
      `POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: ${STREAMED_BYTES}\r\n\r\nstart`,
    );
    await dribble(slow, 'x'.repeat(200), 200);
    expect(await slow.waitForClose(WITHIN_MS)).toBe(true);
    expect(slow.received).toMatch(/^HTTP\/1\.1 408 /);
    // Forwarded as it streamed, then cut: the node saw it aborted, never complete.
    await waitFor(() => node?.inFlight === 0);
    const seen = node?.seenOn('/upload').at(-1);
    expect(seen).toMatchObject({ isComplete: false, isAborted: true });
    expect(proxy.inFlight()).toBe(0);
  });

  it('never writes the 408 into a response the node already started', async () => {
    const node = proxy.nodes[0];
    const slow = new RawConnection(proxy.port);
    await slow.write(
      `POST /early HTTP/1.1\r\nHost: lb.test\r\nContent-Length: ${STREAMED_BYTES}\r\n\r\nstart`,
    );
    await slow.waitFor((text) => text.includes('early'));
    expect(await slow.waitForClose(WITHIN_MS)).toBe(true);
    expect(slow.received).toMatch(/^HTTP\/1\.1 200 /);
    expect(slow.received).not.toContain('408');
    await waitFor(() => node?.inFlight === 0);
    expect(node?.seenOn('/early').at(-1)).toMatchObject({ isComplete: false, isAborted: true });
  });

  it('closes a keep-alive connection left idle after its response', async () => {
    const client = new RawConnection(proxy.port);
    await client.write('GET /idle HTTP/1.1\r\nHost: lb.test\r\n\r\n');
    const response = await client.readResponse();
    expect(response?.status).toBe(200);
    expect(response?.headers.connection).toBe('keep-alive');
    expect(await client.waitForClose(WITHIN_MS)).toBe(true);
    // Closed quietly: no error response for an idle connection.
    expect(response?.rest).toBe('');
    expect(client.received.match(/HTTP\/1\.1/g)).toHaveLength(1);
  });

  it('serves several requests on one connection while it stays busy', async () => {
    const client = new RawConnection(proxy.port);
    for (let i = 0; i < 3; i++) {
      client.clear();
      await client.write(`GET /busy-${i} HTTP/1.1\r\nHost: lb.test\r\n\r\n`);
      expect((await client.readResponse())?.status).toBe(200);
    }
    client.destroy();
  });

  it('closes a connection whose client half-closed mid-request', async () => {
    const client = new RawConnection(proxy.port);
    await client.write('GET /half-closed HTTP/1.1\r\nHost: lb.test\r\n');
    client.socket.end();
    expect(await client.waitForClose(WITHIN_MS)).toBe(true);
    expect(proxy.nodes[0]?.seenOn('/half-closed')).toEqual([]);
  });

  it('closes 2 000 half-open connections at the headers timeout and serves a normal client meanwhile', async () => {
    const connections: RawConnection[] = [];
    try {
      // In batches below the listen backlog (511): past it the kernel itself leaves a client
      // believing it is connected to a socket the proxy never accepted.
      for (let batch = 0; batch < 8; batch++) {
        const opened = Array.from({ length: 250 }, () => new RawConnection(proxy.port));
        connections.push(...opened);
        await Promise.all(opened.map((connection) => connection.connected()));
        // Half of them start a request, half send nothing at all.
        await Promise.all(
          opened.map((connection, index) =>
            index % 2 === 0 ? connection.write('GET /half-open HTTP/1.1\r\nHost: lb') : Promise.resolve(),
          ),
        );
      }
      expect(await isServing(proxy)).toBe(true);
      await waitFor(() => connections.every((connection) => connection.isClosed), 20_000);
      expect(proxy.nodes[0]?.seenOn('/half-open')).toEqual([]);
      await waitFor(async () => (await proxy.connections()) === 0);
      expect(await isServing(proxy)).toBe(true);
    } finally {
      for (const connection of connections) connection.destroy();
    }
  });
});

describe('clients that stop reading their answer', () => {
  /** Small, so a stall is cut quickly; a node answering within it is never affected. */
  const UPSTREAM_MS = 500;
  let stallProxy: HardeningProxy;

  beforeAll(async () => {
    stallProxy = await startHardeningProxy({ proxy: { timeouts: { upstream: UPSTREAM_MS } } });
  });
  afterAll(async () => {
    await stallProxy?.close();
  });

  it('cuts a client that never reads a large answer after proxy.timeouts.upstream, and closes its node connection', async () => {
    const node = stallProxy.nodes[0];
    const abortsBefore = stallProxy.lb.proxy.counters.clientAborts;
    const stalled = new RawConnection(stallProxy.port);
    stalled.socket.pause();
    await stalled.write('GET /large HTTP/1.1\r\nHost: lb.test\r\n\r\n');
    // The node's request is aborted (its connection closed, not left paused in the pool).
    await waitFor(() => node?.seenOn('/large').at(-1)?.isSocketClosed === true, WITHIN_MS);
    expect(node?.seenOn('/large').at(-1)).toMatchObject({ isAborted: true });
    expect(node?.largeWaits).toBeGreaterThan(0);
    await waitFor(() => stallProxy.inFlight() === 0, WITHIN_MS);
    expect(stallProxy.lb.proxy.counters.clientAborts).toBe(abortsBefore + 1);
    // The client, reading at last, finds its connection closed short of the whole answer.
    stalled.socket.resume();
    expect(await stalled.waitForClose(WITHIN_MS)).toBe(true);
    expect(stalled.received).toMatch(/^HTTP\/1\.1 200 /);
    expect(stalled.received.length).toBeLessThan(LARGE_BYTES);
    expect(await isServing(stallProxy)).toBe(true);
  });

  it('serves a whole large answer to a client that reads it in bursts, pausing under the timeout', async () => {
    const node = stallProxy.nodes[0];
    const waitsBefore = node?.largeWaits ?? 0;
    const reader = new RawConnection(stallProxy.port);
    reader.socket.pause();
    await reader.write('GET /large HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n');
    const bursts = setInterval(() => {
      reader.socket.resume();
      setTimeout(() => reader.socket.pause(), 10);
    }, 200);
    try {
      expect(await reader.waitForClose(20_000)).toBe(true);
    } finally {
      clearInterval(bursts);
    }
    const response = reader.received;
    expect(response).toMatch(/^HTTP\/1\.1 200 /);
    expect(response.length - response.indexOf('\r\n\r\n') - 4).toBe(LARGE_BYTES);
    // It stalled the answer several times, each time for less than the timeout.
    expect((node?.largeWaits ?? 0) - waitsBefore).toBeGreaterThan(3);
    expect(node?.seenOn('/large').at(-1)).toMatchObject({ isAborted: false, isSocketClosed: false });
  });
});
