import { Agent, createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isReusedSocketError, NodeRegistry } from '../../src/nodes/index.js';

const servers: Server[] = [];
const registries: NodeRegistry[] = [];

afterEach(async () => {
  for (const registry of registries.splice(0)) registry.close();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A node that answers every request with the id of the connection it came on. */
async function startNode(): Promise<{ url: string; server: Server; open: () => number }> {
  const sockets = new Set<Socket>();
  let nextId = 0;
  const ids = new WeakMap<Socket, number>();
  const server = createServer((req, res) => res.end(String(ids.get(req.socket))));
  server.on('connection', (socket: Socket) => {
    ids.set(socket, ++nextId);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    open: () => sockets.size,
  };
}

function registryFor(url: string): NodeRegistry {
  const registry = new NodeRegistry([{ id: 'n1', url, weight: 1 }], {
    routeOf: (id) => id,
    agent: new Agent({ keepAlive: true }),
  });
  registries.push(registry);
  return registry;
}

async function connectionIdOf(registry: NodeRegistry): Promise<string> {
  const pool = registry.get('n1')?.upstream.pool;
  const answer = await pool?.request({ path: '/', method: 'GET' });
  return (await answer?.body.text()) ?? '';
}

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('upstream pool', () => {
  it('keeps one connection alive for sequential requests to a node', async () => {
    const node = await startNode();
    const registry = registryFor(node.url);
    const first = await connectionIdOf(registry);
    // undici frees a connection for the next request one event-loop turn after an answer
    // (setImmediate); a request sent sooner gets another connection.
    await new Promise(setImmediate);
    expect(await connectionIdOf(registry)).toBe(first);
    await new Promise(setImmediate);
    expect(await connectionIdOf(registry)).toBe(first);
    expect(node.open()).toBe(1);
  });

  it('closes the idle connections of a node marked down, and its next request opens a new one', async () => {
    const node = await startNode();
    const registry = registryFor(node.url);
    const pooled = await connectionIdOf(registry);
    const poolBefore = registry.get('n1')?.upstream.pool;
    registry.setHealthy('n1', false);
    await waitUntil(() => node.open() === 0);
    expect(registry.get('n1')?.upstream.pool).not.toBe(poolBefore);
    registry.setHealthy('n1', true);
    expect(await connectionIdOf(registry)).not.toBe(pooled);
  });

  it('closes the connections of a node removed by a reload', async () => {
    const node = await startNode();
    const registry = registryFor(node.url);
    await connectionIdOf(registry);
    expect(node.open()).toBe(1);
    registry.reconcile([]);
    await waitUntil(() => node.open() === 0);
  });
});

describe('isReusedSocketError', () => {
  it.each([
    ['an error without socket counters', new Error('x'), false],
    [
      "undici's SocketError on a socket that had read bytes",
      Object.assign(new Error('other side closed'), { socket: { bytesRead: 120 } }),
      true,
    ],
    [
      "undici's SocketError on a new socket",
      Object.assign(new Error('other side closed'), { socket: { bytesRead: 0 } }),
      false,
    ],
    ['nothing', undefined, false],
  ])('%s: %s', (_name, error, expected) => {
    expect(isReusedSocketError(error)).toBe(expected);
  });
});
