import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProxyCounters } from '../../src/proxy/proxy-counters.js';
import { Client, startCluster, waitFor, type Cluster } from '../integration/harness.js';
import { clientRequest, startFaultCluster, type FaultCluster } from './fault-cluster.js';
import { okResponse, type FaultBehaviour } from './fault-node.js';

let cluster: FaultCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

const SMUGGLED = 'HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nsmuggled';

/** The node answers well again; a fresh client must be served, on a connection the fault never touched. */
async function expectServedAfter(c: FaultCluster, taintedConnection: number): Promise<void> {
  c.node.behaviour = (socket) => socket.write(okResponse('{"fine":true}'));
  await waitFor(() => !c.node.isOpen(taintedConnection));
  const answer = await clientRequest(c.proxyPort);
  expect(answer).toMatchObject({ status: 200, body: '{"fine":true}', isComplete: true });
  expect(c.node.appRequests.at(-1)?.connectionId).not.toBe(taintedConnection);
  expect(answer.body).not.toContain('smuggled');
}

/** No request stays counted in flight toward the node (the slot of a failed one is freed). */
async function expectNothingInFlight(c: FaultCluster): Promise<void> {
  await waitFor(async () => {
    const state = (await (await fetch(`${c.adminUrl}/api/state`)).json()) as {
      nodes: Array<{ inFlight: number }>;
    };
    return state.nodes.every((node) => node.inFlight === 0);
  });
}

describe('a node that hangs', () => {
  it.each(['POST', 'GET'])(
    '%s: 504 after the upstream timeout, seen by the node exactly once',
    async (method) => {
      cluster = await startFaultCluster({ timeouts: { upstream: '300ms' } });
      const c = cluster;
      c.node.behaviour = () => undefined;
      const body = method === 'POST' ? '{"n":1}' : undefined;
      const answer = await clientRequest(c.proxyPort, { method, ...(body ? { body } : {}) });
      expect(answer.status).toBe(504);
      expect(JSON.parse(answer.body)).toMatchObject({ error: 'SLB_UPSTREAM_TIMEOUT' });
      const [seen] = c.node.appRequests;
      // The proxy gave up on the connection: nothing left that could still deliver a replay.
      await waitFor(() => !c.node.isOpen(seen?.connectionId ?? 0));
      expect(c.node.appRequests.map((r) => r.method)).toEqual([method]);
      expect(seen?.body).toBe(body ?? '');
      expect((await c.counters()).upstreamTimeouts).toBe(1);
      await expectNothingInFlight(c);
      await expectServedAfter(c, seen?.connectionId ?? 0);
    },
  );
});

/** Answers that are broken before any byte of body: the client gets a clean 502. */
const BROKEN_HEADS: Array<[string, string]> = [
  ['an invalid status line', 'HTTP/1.1 abc OK\r\n\r\n'],
  ['no HTTP at all', 'hello there\r\n\r\n'],
  ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nokk'],
  ['a NUL in a header value', 'HTTP/1.1 200 OK\r\nx-a: b\0c\r\n\r\n'],
  [
    'Content-Length and chunked both',
    'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
  ],
];

describe('a node that sends bad framing', () => {
  it.each(BROKEN_HEADS)(
    '%s: 502, POST not replayed, connection dropped, next client served',
    async (_, bytes) => {
      cluster = await startFaultCluster();
      const c = cluster;
      c.node.behaviour = (socket) => socket.write(bytes);
      const answer = await clientRequest(c.proxyPort, { method: 'POST', body: '{"n":1}' });
      expect(answer.status).toBe(502);
      expect(JSON.parse(answer.body)).toMatchObject({ error: 'SLB_UPSTREAM_FAILED' });
      const seen = c.node.appRequests;
      expect(seen.map((r) => r.method)).toEqual(['POST']);
      await expectNothingInFlight(c);
      await expectServedAfter(c, seen[0]?.connectionId ?? 0);
      expect(c.node.appRequests.filter((r) => r.method === 'POST')).toHaveLength(1);
    },
  );

  /** Answers broken after their headers went out: the client's connection is cut, never completed. */
  const CUT_BODIES: Array<[string, FaultBehaviour]> = [
    [
      'a body shorter than its Content-Length, then close',
      (socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort'),
    ],
    [
      'a bad chunk size',
      (socket) => socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n'),
    ],
    [
      'a chunked body without its last chunk, then close',
      (socket) => socket.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n'),
    ],
  ];
  it.each(CUT_BODIES)(
    '%s: the client sees a cut response or a 502, never a complete one',
    async (_, behaviour) => {
      cluster = await startFaultCluster();
      const c = cluster;
      c.node.behaviour = behaviour;
      const answer = await clientRequest(c.proxyPort);
      // A clean 502 when the error beats the headers out, else a cut: never a complete 200.
      if (answer.status !== 502) {
        expect(answer.isComplete).toBe(false);
        expect(answer.isCut).toBe(true);
      }
      const counters = await c.counters();
      expect(counters.truncatedResponses + counters.upstreamErrors).toBeGreaterThanOrEqual(1);
      await expectNothingInFlight(c);
      await expectServedAfter(c, c.node.appRequests[0]?.connectionId ?? 0);
    },
  );

  it('a body longer than its Content-Length: the client gets exactly the declared bytes', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    c.node.behaviour = (socket) => socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok${SMUGGLED}`);
    const answer = await clientRequest(c.proxyPort);
    expect(answer).toMatchObject({ status: 200, body: 'ok', isComplete: true });
    // Node's parser refuses a second answer to one request and closes the socket.
    await expectServedAfter(c, c.node.appRequests[0]?.connectionId ?? 0);
  });

  it('bytes sent after a complete response, on the idle socket: dropped with the socket', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    let late: Socket | undefined;
    c.node.behaviour = (socket) => {
      socket.write(okResponse('{"first":true}'));
      late = socket;
    };
    const answer = await clientRequest(c.proxyPort);
    expect(answer).toMatchObject({ status: 200, body: '{"first":true}', isComplete: true });
    const tainted = c.node.appRequests[0]?.connectionId ?? 0;
    // The connection is pooled by the proxy now; the node speaks unasked.
    late?.write(SMUGGLED);
    await expectServedAfter(c, tainted);
    expect(c.node.appRequests).toHaveLength(2);
  });
});

describe('a node killed -9 mid-response', () => {
  let processes: Cluster | undefined;
  afterEach(async () => {
    await processes?.close();
    processes = undefined;
  });

  it('cuts the streaming client cleanly, counts it, and the session goes on with its counter', async () => {
    processes = await startCluster({ nodeCount: 2 });
    const c = processes;
    const client = new Client(c.proxyUrl);
    const first = await client.request('POST', '/api/counter');
    expect(first.status).toBe(200);
    const victim = c.nodes.find((node) => node.id === first.json.node);
    const port = Number(new URL(c.proxyUrl).port);
    const streamed = clientRequest(port, {
      path: '/api/stream',
      headers: { cookie: `SESSIONID=${client.sessionId}` },
    });
    // Kill once the stream is flowing through the proxy (the node counts it open).
    await waitFor(async () => {
      const open = (await (await fetch(`${victim?.url}/api/stream/open`)).json()) as { open: number };
      return open.open > 0;
    });
    await victim?.kill('SIGKILL');
    const answer = await streamed;
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('chunk 0');
    expect(answer.isComplete).toBe(false);
    expect(answer.isCut).toBe(true);
    await waitFor(async () => {
      const state = (await (await fetch(`${c.adminUrl}/api/state`)).json()) as { proxy: ProxyCounters };
      return state.proxy.truncatedResponses >= 1;
    });
    const metrics = await (await fetch(`${c.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^stickylb_proxy_truncated_responses_total [1-9]/m);
    // Nothing acknowledged is lost: the write before the kill is still there, on the survivor.
    const next = await client.request('POST', '/api/counter');
    expect(next.status).toBe(200);
    expect(next.json.count).toBe(2);
    expect(next.json.node).not.toBe(victim?.id);
  });
});
