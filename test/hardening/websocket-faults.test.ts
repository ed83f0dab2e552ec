import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Client, startCluster, waitFor, type Cluster } from '../integration/harness.js';
import { clientRequest, startFaultCluster, type FaultCluster } from './fault-cluster.js';
import { rawExchange } from './raw-client.js';
import { okResponse } from './fault-node.js';

let cluster: FaultCluster | undefined;
let processes: Cluster | undefined;
const sockets = new Set<Socket>();
afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  await cluster?.close();
  await processes?.close();
  cluster = undefined;
  processes = undefined;
});

const UPGRADE =
  'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
const SWITCHING =
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n';

/** A raw client connection that collects everything the proxy sends, and notices the close. */
async function rawClient(
  port: number,
  text: string,
): Promise<{ socket: Socket; received: () => string; closed: Promise<unknown> }> {
  const socket = connect(port, '127.0.0.1');
  sockets.add(socket);
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = once(socket, 'close');
  await once(socket, 'connect');
  socket.write(text);
  return { socket, received: () => data, closed };
}

/** The proxy still serves a plain request afterwards. */
async function expectServing(c: FaultCluster): Promise<void> {
  c.node.behaviour = (socket) => socket.write(okResponse('{"fine":true}'));
  // A reset may have marked the node suspect: it comes back with its health checks.
  await waitFor(async () => (await clientRequest(c.proxyPort)).status === 200);
}

/** The node's side of every upgrade connection is closed: nothing left open toward it. */
async function expectUpgradesClosed(c: FaultCluster): Promise<void> {
  const upgrades = c.node.appRequests.filter((request) => request.headers.upgrade !== undefined);
  expect(upgrades.length).toBeGreaterThan(0);
  await waitFor(() => upgrades.every((request) => !c.node.isOpen(request.connectionId)));
}

describe('WebSocket faults at the node', () => {
  it('a node that refuses the upgrade (403): the client gets the 403, the proxy stays up', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    c.node.behaviour = (socket) =>
      socket.end(
        'HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nx-stickylb-session-used: 3\r\n' +
          'X-StickyLB-Debug: internal\r\ncontent-length: 4\r\n\r\nnope',
      );
    const client = await rawClient(c.proxyPort, `${UPGRADE}\r\n`);
    await client.closed;
    expect(client.received()).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(client.received()).toMatch(/\r\n\r\nnope$/);
    // The node's internal headers are ours, never the client's.
    expect(client.received()).not.toMatch(/x-stickylb-/i);
    await expectUpgradesClosed(c);
    await expectServing(c);
  });

  it('a node that resets the upgrade: 502 JSON, no crash', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    c.node.behaviour = (socket) => {
      socket.resetAndDestroy();
    };
    const client = await rawClient(c.proxyPort, `${UPGRADE}\r\n`);
    await client.closed;
    expect(client.received()).toMatch(/^HTTP\/1\.1 502 /);
    expect(client.received()).toContain('"error":"SLB_UPSTREAM_FAILED"');
    await expectServing(c);
  });

  it('a node that dies mid-stream: the client connection is closed, no HTTP error written into the stream', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    let upstream: Socket | undefined;
    c.node.behaviour = (socket) => {
      socket.write(SWITCHING);
      upstream = socket;
      return 'tunnel';
    };
    const client = await rawClient(c.proxyPort, `${UPGRADE}\r\n`);
    await waitFor(() => client.received().startsWith('HTTP/1.1 101'));
    client.socket.write('ping');
    await waitFor(() => client.received().endsWith('ping'));
    upstream?.resetAndDestroy();
    await client.closed;
    // After the 101 the connection carries WebSocket frames: a JSON error page there is garbage.
    expect(client.received().split('\r\n\r\n').slice(1).join('')).toBe('ping');
    await expectServing(c);
  });
});

describe('WebSocket upgrades a node never answers', () => {
  it('504 JSON after proxy.timeouts.upstream; the connection to the node is closed, the proxy stays up', async () => {
    cluster = await startFaultCluster({ timeouts: { upstream: '1s' } });
    const c = cluster;
    c.node.behaviour = () => undefined; // accepted, never answered
    const client = await rawClient(c.proxyPort, `${UPGRADE}\r\n`);
    await client.closed;
    expect(client.received()).toMatch(/^HTTP\/1\.1 504 /);
    expect(client.received()).toContain('"error":"SLB_UPSTREAM_TIMEOUT"');
    await expectUpgradesClosed(c);
    expect((await c.counters()).upstreamTimeouts).toBe(1);
    await expectServing(c);
  });
});

describe('WebSocket faults at the client', () => {
  it('a client that resets mid-handshake: the upgrade toward the node is closed too', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    c.node.behaviour = () => undefined; // the node holds its answer
    const client = await rawClient(c.proxyPort, `${UPGRADE}\r\n`);
    await waitFor(() => c.node.appRequests.length === 1);
    client.socket.resetAndDestroy();
    await expectUpgradesClosed(c);
    await expectServing(c);
  });

  it('a client that leaves while its handshake is being retried on another node: that attempt is closed too', async () => {
    cluster = await startFaultCluster({}, 2);
    const c = cluster;
    // A session pinned to whichever node answers first (it reports the session used).
    for (const node of c.nodes) {
      node.behaviour = (socket) =>
        socket.write(
          'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-stickylb-session-used: 1\r\n' +
            'connection: keep-alive\r\n\r\n{}',
        );
    }
    const { response } = await rawExchange(
      c.proxyPort,
      'GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    const cookie = String(response?.headers['set-cookie']).split(';')[0] as string;
    const pinned = c.nodes.find((node) => node.appRequests.length === 1) as (typeof c.nodes)[number];
    const other = c.nodes.find((node) => node !== pinned) as (typeof c.nodes)[number];
    // Holds the retried handshake (and answers the proxy's own calls).
    other.behaviour = (socket, request) =>
      request.headers.upgrade === undefined ? socket.write(okResponse()) : undefined;
    await pinned.close(); // refuses the first attempt
    const client = await rawClient(c.proxyPort, `${UPGRADE}Cookie: ${cookie}\r\n\r\n`);
    await waitFor(() => other.appRequests.some((request) => request.headers.upgrade !== undefined));
    client.socket.resetAndDestroy();
    const retried = other.appRequests.filter((request) => request.headers.upgrade !== undefined);
    await waitFor(() => retried.every((request) => !other.isOpen(request.connectionId)));
  });

  it('a client that resets mid-stream: the tunnel to the node is closed', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    c.node.behaviour = (socket) => {
      socket.write(SWITCHING);
      return 'tunnel';
    };
    const client = await rawClient(c.proxyPort, `${UPGRADE}\r\n`);
    await waitFor(() => client.received().startsWith('HTTP/1.1 101'));
    client.socket.resetAndDestroy();
    await expectUpgradesClosed(c);
    await expectServing(c);
  });

  it('a client that sends half a handshake and leaves: nothing reaches the node, the proxy stays up', async () => {
    cluster = await startFaultCluster();
    const c = cluster;
    const client = await rawClient(c.proxyPort, UPGRADE.slice(0, 40));
    client.socket.resetAndDestroy();
    await expectServing(c);
    expect(c.node.appRequests.filter((request) => request.headers.upgrade !== undefined)).toEqual([]);
  });
});

describe('WebSocket faults with real nodes', () => {
  it('an upgrade without Sec-WebSocket-Key: 400 from the node, forwarded, the proxy stays up', async () => {
    processes = await startCluster({ nodeCount: 2 });
    const port = Number(new URL(processes.proxyUrl).port);
    const noKey = UPGRADE.replace(/Sec-WebSocket-Key: [^\r]*\r\n/, '');
    const client = await rawClient(port, `${noKey}\r\n`);
    await client.closed;
    expect(client.received()).toMatch(/^HTTP\/1\.1 400 /);
    expect((await fetch(`${processes.proxyUrl}/health`)).status).toBe(200);
  });

  it('an upgrade to a node killed -9 is sent to the session’s new node, state and all', async () => {
    processes = await startCluster({ nodeCount: 2 });
    const c = processes;
    const client = new Client(c.proxyUrl);
    await client.request('POST', '/api/counter');
    const { json } = await client.request('POST', '/api/counter');
    const victim = c.nodes.find((node) => node.id === json.node);
    await victim?.kill('SIGKILL');
    // At once, before any health check: the node refuses the connection, the session moves,
    // and the handshake goes to its new node (no 503 "no healthy node", no error at all).
    const ws = new WebSocket(`${c.proxyUrl.replace('http', 'ws')}/ws`, {
      headers: { cookie: `SESSIONID=${client.sessionId}` },
    });
    const [first] = (await once(ws, 'message')) as [Buffer];
    ws.close();
    await once(ws, 'close');
    const served = JSON.parse(first.toString()) as { node: string; sessionId: string };
    expect(served.node).not.toBe(victim?.id);
    expect(served.sessionId.split('.')[0]).toBe(client.sessionId?.split('.')[0]);
    const after = await client.request('GET', '/api/counter');
    expect(after.json).toMatchObject({ node: served.node, count: 2 });
  });
});
